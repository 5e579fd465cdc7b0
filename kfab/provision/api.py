"""The provisioner as other packages use it (ops, registry, cache, lab): a site — an inventory and the play
file that provisions it — with each host's variables resolved as `kfab up` resolves them, SSH to a host as
`kfab up` reaches it, and a run of the plays. Nothing here is argparse: callers pass values."""

from __future__ import annotations

from pathlib import Path

from kfab.provision.context import RunVars
from kfab.provision.errors import HostUnreachable, ProvisionError
from kfab.provision.inventory import Inventory, load_inventory
from kfab.provision.image_names import repository_of
from kfab.provision.inputs import every_role_play
from kfab.provision.playbook import Play, load_playbook
from kfab.provision.remote import RemoteHost
from kfab.provision.ssh import connect, target_from_vars
from kfab.provision.up import provision
from kfab.provision.variables import HostVars, parse_extra_vars

__all__ = ["DEFAULT_PLAYBOOK", "HostUnreachable", "ProvisionError", "RemoteHost", "Site", "repository_of"]

DEFAULT_PLAYBOOK = "site.yml"


class Site:
    """An inventory with the play file its hosts are provisioned with (`playbook=None`: the inventory alone,
    no role defaults). Raises ProvisionError when either cannot be loaded."""

    def __init__(self, inventory_path: str | Path, playbook: str | Path | None = DEFAULT_PLAYBOOK,
                 extra_vars: list[str] | tuple[str, ...] = ()):
        self.inventory_path = Path(inventory_path)
        self.playbook = Path(playbook) if playbook is not None else None
        self.extra_vars = list(extra_vars)
        self.inventory: Inventory = load_inventory(self.inventory_path)
        self.plays: list[Play] = load_playbook(self.playbook) if self.playbook is not None else []
        self._vars = RunVars(self.inventory, parse_extra_vars(self.extra_vars, Path.cwd()))
        self._all_roles = every_role_play(self.plays)

    # ---- hosts and their variables ------------------------------------------------------------------
    def group(self, name: str) -> list[str]:
        """The group's hosts (children's too); [] for a group the inventory does not have."""
        return self.inventory.group_hosts(name) if name in self.inventory.groups else []

    def select(self, pattern: str) -> list[str]:
        """Hosts matching an Ansible host pattern (as --limit)."""
        return self.inventory.select(pattern)

    def host_vars(self, host: str) -> HostVars:
        """The host's variables: every role's defaults < inventory < extra vars. A value that is a template
        is rendered when read (ProvisionError if it cannot be)."""
        return self._vars.host_vars(host, self._all_roles)

    def var(self, host: str, name: str, default=None):
        variables = self.host_vars(host)
        return variables[name] if name in variables else default

    # ---- reaching a host and provisioning -----------------------------------------------------------
    def connect(self, host: str) -> RemoteHost:
        """The host over SSH as `kfab up` reaches it (same variables, host key checks, ~/.ssh/config), with
        become on. HostUnreachable when it cannot be reached or its connection variables are bad."""
        try:
            target = target_from_vars(host, self._vars.host_vars(host), self.inventory.base)
        except (ValueError, TypeError, ProvisionError) as exc:
            raise HostUnreachable(f"bad connection variable: {exc}") from None
        remote = RemoteHost(host, connect(target))
        remote.become = True
        return remote

    def up(self, limit: str | None = None, extra_vars: list[str] | tuple[str, ...] = (), verbose: int = 0,
           check: bool = False) -> int:
        """`kfab up -i INVENTORY PLAYBOOK [--limit LIMIT] [-e ...]`: its output and exit code."""
        if self.playbook is None:
            raise ValueError("a site loaded without a play file cannot be provisioned")
        return provision(str(self.inventory_path), str(self.playbook), self.extra_vars + list(extra_vars),
                         limit=limit, check=check, verbose=verbose)
