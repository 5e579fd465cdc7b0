"""The inputs of a run (`kfab up`, `kfab plan`, `kfab doctor`): inventory, plays and extra vars, vault data
decrypted with the password files given (or $ANSIBLE_VAULT_PASSWORD_FILE). ProvisionError when one is invalid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kfab.provision.inventory import Inventory, load_inventory
from kfab.provision.playbook import Play, load_playbook
from kfab.provision.variables import parse_extra_vars
from kfab.provision.vault import Vault


@dataclass
class RunInputs:
    inventory: Inventory
    plays: list[Play]
    extra_vars: dict
    secrets: frozenset[str] = frozenset()  # what the vault decrypted: masked in the run's output


def load_inputs(inventory_path: str, playbook: str, extra_vars: list[str],
                vault_password_files: list[str] = ()) -> RunInputs:
    password_files = list(vault_password_files) or (
        [os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]] if os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") else [])
    vault = Vault.from_files(password_files) if password_files else None
    inputs = RunInputs(load_inventory(inventory_path, vault), load_playbook(playbook, vault),
                       parse_extra_vars(extra_vars, Path.cwd(), vault))
    inputs.secrets = frozenset(vault.revealed) if vault is not None else frozenset()
    return inputs


def every_role_play(plays: list[Play]) -> Play | None:
    """Every role of the plays in one play (each once), so a variable read outside a run resolves as in the
    play that sets it: with every role's defaults below the inventory. None when there are no plays."""
    if not plays:
        return None
    refs, seen = [], set()
    for play in plays:
        for ref in play.roles:
            if ref.role.name not in seen:
                seen.add(ref.role.name)
                refs.append(ref)
    return Play(name="every role", hosts="all", roles=refs, vars={}, become=True, tags=[], file=plays[0].file,
                line=None)
