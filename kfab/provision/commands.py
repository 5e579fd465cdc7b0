"""`kfab up`: provision hosts from an inventory with a play file (default site.yml)."""

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


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("up", help="provision hosts: run the plays of a play file (default site.yml)",
                              description="Apply roles to the hosts of an Ansible-style inventory over SSH.")
    p.add_argument("-i", "--inventory", required=True, help="inventory file (Ansible YAML format)")
    p.add_argument("playbook", nargs="?", default="site.yml", help="play file (default: site.yml)")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help="key=value, @file.yml or a JSON/YAML mapping; highest precedence; repeatable")
    p.add_argument("-l", "--limit", help="only these hosts/groups (Ansible host pattern)")
    p.add_argument("-t", "--tags", default="", help="only tasks with one of these tags (comma separated)")
    p.add_argument("-C", "--check", action="store_true", help="change nothing; report what would change")
    p.add_argument("-D", "--diff", action="store_true", help="show unified diffs of changed files")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v: commands run; -vv: their output")
    p.add_argument("-f", "--forks", type=int, default=10, help="hosts worked on in parallel (default 10)")
    p.add_argument("--fail-fast", action="store_true", help="stop every host when one host fails")
    _connection_options(p)
    p.set_defaults(func=run_up, json=False)

    # `kfab plan` (issue 6): `kfab up --check --diff` under the name users look for; same arguments.
    p = subparsers.add_parser("plan", help="show what `kfab up` would change on which host (check + diff)",
                              description="Run the plays in check mode with diffs: nothing on any host changes. "
                              "Exit code 0: no changes; 2: changes pending; 1: the plan failed; 4: a host was "
                              "unreachable.")
    p.add_argument("-i", "--inventory", required=True, help="inventory file (Ansible YAML format)")
    p.add_argument("playbook", nargs="?", default="site.yml", help="play file (default: site.yml)")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS")
    p.add_argument("-l", "--limit")
    p.add_argument("-t", "--tags", default="")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-f", "--forks", type=int, default=10)
    p.add_argument("--json", action="store_true",
                   help="print the plan as JSON on stdout (hosts -> tasks -> status, changed, diff, duration); "
                        "the progress lines go to stderr")
    _connection_options(p)
    p.set_defaults(func=run_up, check=True, diff=True, fail_fast=False, plan=True)


def _connection_options(p) -> None:
    p.add_argument("-K", "--ask-become-pass", action="store_true",
                   help="ask for the sudo password (else ansible_become_password, else sudo -n)")
    p.add_argument("--vault-password-file", action="append", default=[], metavar="FILE",
                   help="decrypt ansible-vault files and !vault strings with this password (repeatable; "
                        "default $ANSIBLE_VAULT_PASSWORD_FILE)")


def run_up(args) -> int:
    # paramiko logs a traceback for every failed connection attempt; the unreachable line says it in one.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    try:
        password_files = args.vault_password_file or (
            [os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]] if os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") else [])
        vault = Vault.from_files(password_files) if password_files else None
        inventory = load_inventory(args.inventory, vault)
        plays = load_playbook(args.playbook, vault)
        extra = parse_extra_vars(args.extra_vars, Path.cwd(), vault)
    except ProvisionError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    hosts = inventory.select(args.limit) if args.limit else list(inventory.hosts)
    if not hosts:
        print(f"ERROR: --limit {args.limit!r} matches no host of {args.inventory}", file=sys.stderr)
        return EXIT_INVALID
    errors = preflight(inventory, plays, extra, hosts)
    if errors:
        for exc in errors:
            print(f"ERROR: {exc}", file=sys.stderr)
        print(f"ERROR: nothing was run: fix the {'error' if len(errors) == 1 else f'{len(errors)} errors'} "
              f"above first", file=sys.stderr)
        return EXIT_INVALID
    become_password = getpass.getpass("BECOME password: ") if args.ask_become_pass else None
    options = Options(check=args.check, diff=args.diff, verbose=args.verbose, forks=args.forks,
                      fail_fast=args.fail_fast, limit=args.limit,
                      tags=tuple(t.strip() for t in args.tags.split(",") if t.strip()),
                      become_password=become_password)
    output = Output(stream=sys.stderr if args.json else None, verbose=args.verbose)
    runner = Runner(inventory, plays, extra, options, output)
    code = runner.run()
    if args.json:
        print(json.dumps(runner.report.as_dict(runner.stats), indent=2, default=str))
    if not getattr(args, "plan", False) or code == 4:
        return code
    if code != 0:
        return PLAN_FAILED
    return PLAN_CHANGES if any(s.changed for s in runner.stats.values()) else 0
