"""What the lab needs from an Ansible YAML inventory: its hosts, their IPs, the network and the key.

The inventory is read by the provisioner's loader (kfab.provision.inventory), so the lab and
`kfab up` see the same hosts and variables; this module adds the lab's own checks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from kfab.lab.errors import LabError
from kfab.lab.state import state_dir
from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory

# Podman container and network names; also valid hostnames.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class LabHost:
    name: str
    ip: str
    groups: tuple[str, ...]
    # A QEMU VM instead of a container (host var kfab_lab_vm: true; see kfab/lab/vm.py).
    vm: bool = False
    memory_mib: int = 1024
    cpus: int = 2


@dataclass(frozen=True)
class LabSpec:
    inventory: Path
    network: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[LabHost, ...]
    key_file: Path
    known_hosts_file: Path
    state_dir: Path

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"{self.inventory}: no lab host named {name!r} "
                       f"(hosts: {', '.join(h.name for h in self.hosts)})")


def load_lab_spec(path: str | Path) -> LabSpec:
    """Read and check the inventory; every error names the file and, where it applies, the host."""
    path = Path(path)
    try:
        inventory = load_inventory(path)
    except ProvisionError as exc:
        raise LabError(str(exc)) from exc
    network = _lab_var(path, inventory, "kfab_lab_network", "the lab's Podman network name")
    if not NAME_RE.match(network):
        raise LabError(f"{path}: kfab_lab_network {network!r} is not a valid network name")
    subnet_text = _lab_var(path, inventory, "kfab_lab_subnet", "the lab's subnet, e.g. 10.78.0.0/24")
    try:
        subnet = ipaddress.IPv4Network(subnet_text)
    except ValueError as exc:
        raise LabError(f"{path}: kfab_lab_subnet {subnet_text!r} is not an IPv4 subnet: {exc}") from None
    if subnet.num_addresses < 4:
        raise LabError(f"{path}: kfab_lab_subnet {subnet} is too small for a lab")

    hosts: list[LabHost] = []
    seen_ips: dict[str, str] = {}
    gateway = subnet.network_address + 1
    for name, host in inventory.hosts.items():
        if not NAME_RE.match(name):
            raise LabError(f"{path}: host {name}: not a valid lab host name "
                           "(lowercase letters, digits and '-', as for a container name)")
        ip_text = host.vars.get("ansible_host")
        if ip_text in (None, ""):
            raise LabError(f"{path}: host {name}: ansible_host is missing (the lab host's IP in {subnet})")
        try:
            ip = ipaddress.IPv4Address(str(ip_text))
        except ValueError:
            raise LabError(f"{path}: host {name}: ansible_host {ip_text!r} is not an IPv4 address") from None
        if ip not in subnet:
            raise LabError(f"{path}: host {name}: ansible_host {ip} is outside the lab subnet {subnet}")
        if ip in (subnet.network_address, subnet.broadcast_address, gateway):
            raise LabError(f"{path}: host {name}: ansible_host {ip} is reserved in {subnet} "
                           f"(network, broadcast or the gateway {gateway})")
        if str(ip) in seen_ips:
            raise LabError(f"{path}: host {name}: ansible_host {ip} is already used by host {seen_ips[str(ip)]}")
        seen_ips[str(ip)] = name
        hosts.append(LabHost(name=name, ip=str(ip), groups=tuple(host.groups), **_vm_vars(path, name, host.vars)))

    sdir = state_dir(network)
    key_file = _lab_var(path, inventory, "ansible_ssh_private_key_file", "", default=str(sdir / "id_ed25519"))
    known_hosts = _lab_var(path, inventory, "kfab_known_hosts_file", "", default=str(sdir / "known_hosts"))
    return LabSpec(inventory=path, network=network, subnet=subnet, hosts=tuple(hosts),
                   key_file=Path(key_file).expanduser(), known_hosts_file=Path(known_hosts).expanduser(),
                   state_dir=sdir)


def _lab_var(path: Path, inventory, name: str, what: str, default: str | None = None) -> str:
    """A lab-wide variable (set in all.vars): every host must see the same literal value."""
    values: dict[str, str] = {}
    for host_name, host in inventory.hosts.items():
        value = host.vars.get(name)
        if value in (None, ""):
            if default is not None:
                value = default
            else:
                raise LabError(f"{path}: host {host_name}: {name} is missing ({what}; set it in all.vars)")
        value = str(value)
        if "{{" in value:
            raise LabError(f"{path}: host {host_name}: {name} must be a literal value for the lab, not a template")
        values[host_name] = value
    distinct = sorted(set(values.values()))
    if len(distinct) > 1:
        odd = next(h for h, v in values.items() if v != values[next(iter(values))])
        raise LabError(f"{path}: host {odd}: {name} differs between hosts ({', '.join(distinct)}); "
                       "the lab needs one value in all.vars")
    return distinct[0]


VM_LIMITS = {"kfab_lab_vm_memory": ("memory_mib", 256, 16384, "MiB"), "kfab_lab_vm_cpus": ("cpus", 1, 8, "CPUs")}


def _vm_vars(path: Path, name: str, host_vars: dict) -> dict:
    """kfab_lab_vm (true: a QEMU VM host), kfab_lab_vm_memory (MiB) and kfab_lab_vm_cpus."""
    flag = host_vars.get("kfab_lab_vm", False)
    if isinstance(flag, str) and flag.strip().lower() in ("yes", "true", "on", "1", "no", "false", "off", "0", ""):
        flag = flag.strip().lower() in ("yes", "true", "on", "1")
    if not isinstance(flag, bool):
        raise LabError(f"{path}: host {name}: kfab_lab_vm {flag!r} is not true or false")
    result: dict = {"vm": flag}
    for var, (field, low, high, unit) in VM_LIMITS.items():
        value = host_vars.get(var)
        # Container hosts ignore these, so they may be set once in all.vars or a group.
        if value in (None, "") or not flag:
            continue
        try:
            number = int(str(value))
        except ValueError:
            raise LabError(f"{path}: host {name}: {var} {value!r} is not a whole number of {unit}") from None
        if not low <= number <= high:
            raise LabError(f"{path}: host {name}: {var} {number} is outside {low}..{high} {unit}")
        result[field] = number
    return result
