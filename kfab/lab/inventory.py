"""What the lab needs from an Ansible YAML inventory: its hosts, their IPs, the network and the key.

A deliberately small reader (hosts, nested children, vars, group_vars/ and host_vars/ beside the file):
the lab only needs literal connection values. The provisioner has the full loader with precedence and
templating (kfab.provision.inventory); the lab does not depend on it so it can start hosts on its own.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kfab.lab.errors import LabError
from kfab.lab.state import state_dir

# Podman container and network names; also valid hostnames.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class LabHost:
    name: str
    ip: str
    groups: tuple[str, ...]


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
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        raise LabError(f"{path}: not an Ansible YAML inventory (expected a top-level 'all:' mapping)")
    host_vars: dict[str, dict] = {}
    host_groups: dict[str, list[str]] = {}
    _walk_group(path, "all", data["all"], {}, host_vars, host_groups)
    all_vars = dict(data["all"].get("vars") or {})
    all_vars.update(_vars_file(path.parent / "group_vars", "all"))
    for name, hv in host_vars.items():
        for group in host_groups[name]:
            if group != "all":
                hv.update({k: v for k, v in _vars_file(path.parent / "group_vars", group).items()
                           if k not in hv})
        hv.update(_vars_file(path.parent / "host_vars", name))

    network = _required_var(path, all_vars, "kfab_lab_network", "the lab's Podman network name")
    if not NAME_RE.match(str(network)):
        raise LabError(f"{path}: all.vars.kfab_lab_network {network!r} is not a valid network name")
    subnet_text = _required_var(path, all_vars, "kfab_lab_subnet", "the lab's subnet, e.g. 10.78.0.0/24")
    try:
        subnet = ipaddress.IPv4Network(str(subnet_text))
    except ValueError as exc:
        raise LabError(f"{path}: all.vars.kfab_lab_subnet {subnet_text!r} is not an IPv4 subnet: {exc}")
    if subnet.num_addresses < 4:
        raise LabError(f"{path}: all.vars.kfab_lab_subnet {subnet} is too small for a lab")
    if not host_vars:
        raise LabError(f"{path}: the inventory lists no hosts")

    hosts: list[LabHost] = []
    seen_ips: dict[str, str] = {}
    gateway = subnet.network_address + 1
    for name, hv in host_vars.items():
        if not NAME_RE.match(name):
            raise LabError(f"{path}: host {name}: not a valid lab host name "
                           "(lowercase letters, digits and '-', as for a container name)")
        ip_text = hv.get("ansible_host")
        if ip_text in (None, ""):
            raise LabError(f"{path}: host {name}: ansible_host is missing (the lab host's IP in {subnet})")
        try:
            ip = ipaddress.IPv4Address(str(ip_text))
        except ValueError:
            raise LabError(f"{path}: host {name}: ansible_host {ip_text!r} is not an IPv4 address")
        if ip not in subnet:
            raise LabError(f"{path}: host {name}: ansible_host {ip} is outside the lab subnet {subnet}")
        if ip in (subnet.network_address, subnet.broadcast_address, gateway):
            raise LabError(f"{path}: host {name}: ansible_host {ip} is reserved in {subnet} "
                           f"(network, broadcast or the gateway {gateway})")
        if str(ip) in seen_ips:
            raise LabError(f"{path}: host {name}: ansible_host {ip} is already used by host {seen_ips[str(ip)]}")
        seen_ips[str(ip)] = name
        hosts.append(LabHost(name=name, ip=str(ip), groups=tuple(host_groups[name])))

    sdir = state_dir(str(network))
    key_file = Path(str(all_vars.get("ansible_ssh_private_key_file") or sdir / "id_ed25519")).expanduser()
    known_hosts = Path(str(all_vars.get("kfab_known_hosts_file") or sdir / "known_hosts")).expanduser()
    return LabSpec(inventory=path, network=str(network), subnet=subnet, hosts=tuple(hosts),
                   key_file=key_file, known_hosts_file=known_hosts, state_dir=sdir)


def _read_yaml(path: Path):
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(f"{path}: cannot read the inventory: {exc.strerror}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LabError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', exc)}")


def _vars_file(directory: Path, name: str) -> dict:
    for candidate in (directory / f"{name}.yml", directory / f"{name}.yaml", directory / name):
        if candidate.is_file():
            data = _read_yaml(candidate)
            if data is None:
                return {}
            if not isinstance(data, dict):
                raise LabError(f"{candidate}: expected a mapping of variables")
            return data
    return {}


def _walk_group(path: Path, group: str, body, inherited: dict, host_vars: dict, host_groups: dict) -> None:
    if body is None:
        return
    if not isinstance(body, dict):
        raise LabError(f"{path}: group {group}: expected a mapping with hosts/children/vars")
    group_vars = {**inherited, **(body.get("vars") or {})}
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise LabError(f"{path}: group {group}: 'hosts' must be a mapping of host names")
    for name, hv in hosts.items():
        if hv is not None and not isinstance(hv, dict):
            raise LabError(f"{path}: host {name}: host variables must be a mapping")
        merged = host_vars.setdefault(str(name), {})
        for key, value in group_vars.items():
            merged.setdefault(key, value)
        merged.update(hv or {})
        groups = host_groups.setdefault(str(name), [])
        if group not in groups:
            groups.append(group)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise LabError(f"{path}: group {group}: 'children' must be a mapping of groups")
    for child, child_body in children.items():
        _walk_group(path, str(child), child_body, group_vars, host_vars, host_groups)


def _required_var(path: Path, all_vars: dict, name: str, what: str):
    value = all_vars.get(name)
    if value in (None, ""):
        raise LabError(f"{path}: all.vars.{name} is missing ({what})")
    return value
