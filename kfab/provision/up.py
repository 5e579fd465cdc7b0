"""One provisioning run as `kfab up` and `kfab plan` do it: load inventory, plays and extra vars (decrypting
vault data), preflight every host, run, and turn the outcome into the exit code."""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from pathlib import Path

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory
from kfab.provision.output import Output
from kfab.provision.playbook import load_playbook
from kfab.provision.preflight import preflight
from kfab.provision.runner import Options, Runner
from kfab.provision.variables import parse_extra_vars
from kfab.provision.vault import Vault

EXIT_INVALID = 1   # the inputs are invalid: nothing ran on any host
# kfab up: 2: some host failed; 4: some host was unreachable (as ansible-playbook)
# kfab plan (as `terraform plan -detailed-exitcode`): 0 nothing would change, 2 changes pending,
# 1 the plan could not be made (invalid inputs, or a task failed on some host), 4 a host was unreachable.
PLAN_CHANGES = 2
PLAN_FAILED = 1


def provision(inventory_path: str, playbook: str, extra_vars: list[str], *, limit: str | None = None,
              tags: str = "", check: bool = False, diff: bool = False, verbose: int = 0, forks: int = 10,
              fail_fast: bool = False, plan: bool = False, as_json: bool = False, ask_become_pass: bool = False,
              vault_password_files: list[str] = (), profile: bool = False) -> int:
    # paramiko logs a traceback for every failed connection attempt; the unreachable line says it in one.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    try:
        password_files = list(vault_password_files) or (
            [os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]] if os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") else [])
        vault = Vault.from_files(password_files) if password_files else None
        inventory = load_inventory(inventory_path, vault)
        plays = load_playbook(playbook, vault)
        extra = parse_extra_vars(extra_vars, Path.cwd(), vault)
    except ProvisionError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    hosts = inventory.select(limit) if limit else list(inventory.hosts)
    if not hosts:
        print(f"ERROR: --limit {limit!r} matches no host of {inventory_path}", file=sys.stderr)
        return EXIT_INVALID
    errors = preflight(inventory, plays, extra, hosts)
    if errors:
        for exc in errors:
            print(f"ERROR: {exc}", file=sys.stderr)
        print(f"ERROR: nothing was run: fix the {'error' if len(errors) == 1 else f'{len(errors)} errors'} "
              f"above first", file=sys.stderr)
        return EXIT_INVALID
    become_password = getpass.getpass("BECOME password: ") if ask_become_pass else None
    options = Options(check=check, diff=diff, verbose=verbose, forks=forks, fail_fast=fail_fast, limit=limit,
                      tags=tuple(t.strip() for t in tags.split(",") if t.strip()), become_password=become_password)
    output = Output(stream=sys.stderr if as_json else None, verbose=verbose)
    runner = Runner(inventory, plays, extra, options, output)
    code = runner.run()
    if profile:
        output.note(runner.report.profile())
    if as_json:
        print(json.dumps(runner.report.as_dict(runner.stats), indent=2, default=str))
    if not plan or code == 4:
        return code
    if code != 0:
        return PLAN_FAILED
    return PLAN_CHANGES if any(s.changed for s in runner.stats.values()) else 0
