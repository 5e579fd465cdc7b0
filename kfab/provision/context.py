"""The variables a task sees on one host: role defaults, inventory layers, play vars, registered results,
extra vars and the magic names (inventory_hostname, group_names, groups, hostvars, kfab_facts...)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from kfab.provision.facts import ansible_facts
from kfab.provision.inventory import Inventory, Layer
from kfab.provision.lookups import Lookups
from kfab.provision.playbook import Play, RoleRef
from kfab.provision.templating import OMIT
from kfab.provision.variables import HostVars

EXTRA_SOURCE = "extra vars (-e)"
REGISTERED_SOURCE = "registered results"


class RunVars:
    """Variables of every host in a run; registered results and facts are filled in as the run goes."""

    def __init__(self, inventory: Inventory, extra_vars: dict, check: bool = False):
        self.inventory = inventory
        self.extra_vars = extra_vars
        self.check = check
        self.facts: dict[str, dict] = {}
        self.registered: dict[str, dict] = {h: {} for h in inventory.hosts}
        self.groups = {g: inventory.group_hosts(g) for g in inventory.groups}
        self.groups.setdefault("ungrouped", [h for h, host in inventory.hosts.items() if host.groups == ["all"]])
        # The running play's hosts and batch (`serial`), and the hosts that failed: set by the runner.
        self.play_hosts: list[str] = []
        self.batch: list[str] = []
        self.dead: set[str] = set()

    def magic(self, host: str) -> dict:
        inv_host = self.inventory.hosts[host]
        return {
            "inventory_hostname": host,
            "inventory_hostname_short": host.split(".")[0],
            "group_names": [g for g in inv_host.groups if g != "all"],
            "groups": self.groups,
            "hostvars": _AllHostVars(self),
            "kfab_facts": self.facts.get(host, {}),
            "inventory_dir": str(self.inventory.base),
            "inventory_file": str(self.inventory.path),
            "kfab_check_mode": self.check,
            "ansible_check_mode": self.check,
            "omit": OMIT,
            "ansible_play_hosts_all": list(self.play_hosts),
            "ansible_play_hosts": [h for h in self.play_hosts if h not in self.dead],
            "ansible_play_batch": [h for h in self.batch if h not in self.dead],
            "play_hosts": [h for h in self.batch if h not in self.dead],
        }

    def host_vars(self, host: str, play: Play | None = None, ref: RoleRef | None = None,
                  scopes: tuple[Layer, ...] = (), params: tuple[Layer, ...] = (),
                  stack: list[Path] | None = None) -> HostVars:
        """Layers lowest first, in Ansible's order (docs: "Understanding variable precedence"): role defaults,
        inventory, host facts, play vars, vars_files, role vars, `scopes` (block vars, then task vars),
        registered results and set_fact, role params, `params` (include vars), extra vars (-e) — which beat
        everything."""
        layers: list[Layer] = []
        if play is not None:
            # Every role's defaults are visible in the play (as in Ansible); the current role's win.
            for other in play.roles:
                if ref is None or other.role is not ref.role:
                    layers.append(other.role.defaults)
            if ref is not None:
                layers.append(ref.role.defaults)
        layers += self.inventory.hosts[host].layers
        if host in self.facts:
            # Host facts sit above the inventory and below play vars, as in Ansible.
            layers.append(Layer("facts", ansible_facts(self.facts[host])))
        if play is not None:
            layers.append(Layer(f"{play.file} (play vars)", play.vars))
            layers += play.vars_files
            if ref is not None and ref.role.vars is not None and ref.role.vars.vars:
                layers.append(ref.role.vars)
        layers += scopes
        layers.append(Layer(REGISTERED_SOURCE, self.registered.setdefault(host, {})))
        if play is not None and ref is not None and ref.vars:
            layers.append(Layer(f"{play.file} (vars of role {ref.role.name})", ref.vars))
        layers += params
        layers.append(Layer(EXTRA_SOURCE, self.extra_vars))
        magic = self.magic(host)
        play_dir = Path(play.file).parent if play is not None else Path.cwd()
        if ref is not None:
            magic["role_path"] = str(ref.role.path)
            magic["role_name"] = ref.role.name
            if stack is None:
                stack = ref.role.search_stack(includers=ref.dependents)
        layers.append(Layer("magic variables", magic))
        variables = HostVars(layers)
        lookups = Lookups(stack or [], play_dir, variables)
        magic.update(lookup=lookups.lookup, query=lookups.query, q=lookups.query)
        return variables


class _AllHostVars(Mapping):
    """`hostvars[name]`: another host's inventory-level variables (and facts once gathered)."""

    def __init__(self, run: RunVars):
        self.run = run

    def __getitem__(self, host: str) -> HostVars:
        if host not in self.run.inventory.hosts:
            raise KeyError(host)
        return self.run.host_vars(host)

    def __iter__(self) -> Iterator[str]:
        return iter(self.run.inventory.hosts)

    def __len__(self) -> int:
        return len(self.run.inventory.hosts)


def resolve_path(value: str, base: Path) -> str:
    """A relative path in the inventory is taken relative to the inventory file's directory."""
    value = os.path.expanduser(str(value))
    return value if os.path.isabs(value) else str((base / value).resolve())
