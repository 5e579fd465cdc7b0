"""An inventory that describes a kfab lab (`kfab_lab_network`, see kfab/lab) whose lab is not up: said once,
before any connection, instead of every host timing out on its own. The lab's hosts are Podman containers
named after the inventory hosts on that network (VM hosts, `kfab_lab_vm`, are not containers: only their
network is looked at)."""

from __future__ import annotations

import shutil
import subprocess

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Inventory
from kfab.provision.modules.base import as_bool
from kfab.provision.variables import HostVars


def lab_not_up(inventory: Inventory, host_vars: dict[str, HostVars]) -> list[ProvisionError]:
    networks: dict[str, list[str]] = {}
    for host, variables in host_vars.items():
        network = variables.get("kfab_lab_network")
        if network:
            networks.setdefault(str(network), []).extend([] if as_bool(variables.get("kfab_lab_vm")) else [host])
    errors = []
    for network, containers in sorted(networks.items()):
        fix = f"run `kfab lab up -i {inventory.path}` first"
        if shutil.which("podman") is None:
            errors.append(ProvisionError(f"the kfab lab of this inventory (network {network}) is not up: "
                                         f"podman is not installed here; {fix}"))
            continue
        listed = subprocess.run(["podman", "ps", "--filter", f"network={network}", "--format", "{{.Names}}"],
                                capture_output=True, text=True, timeout=60)
        exists = subprocess.run(["podman", "network", "exists", network], capture_output=True, timeout=60)
        running = set(listed.stdout.split()) if listed.returncode == 0 else set()
        missing = [h for h in containers if h not in running]
        if exists.returncode != 0:
            errors.append(ProvisionError(f"the kfab lab of this inventory (network {network}) is not up: "
                                         f"no such Podman network; {fix}"))
        elif containers and len(missing) == len(containers):
            # None of its hosts runs: the lab is down. (One host down is the run's to report: unreachable.)
            errors.append(ProvisionError(f"the kfab lab of this inventory (network {network}) is not up: "
                                         f"none of its hosts ({', '.join(missing)}) is running; {fix}"))
    return errors
