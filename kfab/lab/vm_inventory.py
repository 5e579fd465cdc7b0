"""`kfab lab up --vms N`: the inventory plus N VM hosts, written where `kfab up` can be pointed at it.

The inventory stays the source of truth: the VMs are not started from the command line alone but
written as hosts (kfab_lab_vm: true, the next free IPs of the lab subnet, group workers) into
`<inventory stem>-vms.yml` next to the given file, so its group_vars/ and host_vars/ still apply.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml

from kfab.lab.errors import LabError
from kfab.lab.inventory import LabSpec
from kfab.lab.vm import holder_ip

VM_GROUP = "workers"
NAME_PREFIX = "vm"


def vms_inventory_path(inventory: Path) -> Path:
    return inventory.with_name(f"{inventory.stem}-vms.yml")


def free_ips(spec: LabSpec, count: int) -> list[str]:
    """The next `count` addresses above the inventory's highest host IP that no host uses."""
    used = {ipaddress.IPv4Address(h.ip) for h in spec.hosts}
    reserved = {spec.subnet.network_address, spec.subnet.broadcast_address,
                ipaddress.IPv4Address(spec.gateway), ipaddress.IPv4Address(holder_ip(spec))}
    start = max(used, default=spec.subnet.network_address + 10) + 1
    found = []
    candidate = start
    while len(found) < count and candidate in spec.subnet:
        if candidate not in used and candidate not in reserved:
            found.append(str(candidate))
        candidate += 1
    if len(found) < count:
        raise LabError(f"{spec.inventory}: --vms {count}: only {len(found)} free address(es) in "
                       f"{spec.subnet} above {start - 1}")
    return found


def write_vms_inventory(spec: LabSpec, count: int) -> Path:
    """Write the inventory with `count` more VM hosts; returns its path (rewritten only on change)."""
    if count < 1:
        raise LabError(f"--vms {count}: give at least 1")
    try:
        data = yaml.safe_load(spec.inventory.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{spec.inventory}: cannot read it again for --vms: {exc}") from exc
    taken = {h.name for h in spec.hosts}
    names = []
    n = 1
    while len(names) < count:
        if f"{NAME_PREFIX}{n}" not in taken:
            names.append(f"{NAME_PREFIX}{n}")
        n += 1
    group = data.setdefault("all", {}).setdefault("children", {}).setdefault(VM_GROUP, None) or {}
    data["all"]["children"][VM_GROUP] = group
    hosts = group.setdefault("hosts", None) or {}
    group["hosts"] = hosts
    for name, ip in zip(names, free_ips(spec, count)):
        hosts[name] = {"ansible_host": ip, "kfab_lab_vm": True}
    path = vms_inventory_path(spec.inventory)
    text = (f"# Written by `kfab lab up -i {spec.inventory} --vms {count}`: that inventory plus {count} "
            f"QEMU VM host(s).\n# Edit {spec.inventory.name} instead; use this file for `kfab up` and "
            "`kfab lab down|status|ssh`.\n" + yaml.safe_dump(data, sort_keys=False))
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
