"""`kfab up` and `kfab plan`: their arguments; the run itself is kfab.provision.up."""

from __future__ import annotations

from pathlib import Path

from kfab.provision.bundle import DEFAULT_PORT, create, up_with_bundle, verify
from kfab.provision.doctor import doctor
from kfab.provision.up import provision


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
    p.add_argument("--skip-doctor", action="store_true",
                   help="do not stop on kfab doctor's fatal findings before changing anything")
    _bundle_options(p, "install with no network beyond the hosts': packages, wheels and images from this offline "
                       "bundle (kfab bundle create), served to the hosts from this machine")
    _connection_options(p)
    p.set_defaults(func=run_up, json=False, plan=False)

    bundle = subparsers.add_parser("bundle", help="an offline bundle for install nights: create once, verify copies")
    sub = bundle.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="packages, wheels and images an inventory's hosts need, in one file",
                       description="On a machine that is online: the .deb closure of every role's packages "
                                   "(resolved by apt on a host of the hosts' Debian release), kfab's wheelhouse and "
                                   "the images the inventory lists in kfab_bundle_images, with a manifest of "
                                   "sha256 checksums. The same inputs give the same file.")
    p.add_argument("-i", "--inventory", required=True, help="inventory file (Ansible YAML format)")
    p.add_argument("playbook", nargs="?", default="site.yml", help="play file whose roles are bundled")
    p.add_argument("-o", "--output", type=Path, default=Path("kfab-bundle.tar"), help="default kfab-bundle.tar")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS")
    p.add_argument("--resolve-on", metavar="HOST",
                   help="the inventory host whose apt resolves the packages (default: the first host)")
    p.set_defaults(func=run_bundle_create)
    p = sub.add_parser("verify", help="check a copied bundle: every member against the manifest's sha256")
    p.add_argument("bundle", type=Path)
    p.set_defaults(func=lambda args: verify(args.bundle))

    p = subparsers.add_parser("doctor", help="check every host before `kfab up`: SSH, sudo, OS, clock, disk, memory, "
                                             "cgroups, kernel features, ports, swap, network, conflicting software",
                              description="A preflight of every host, in parallel; nothing is changed. Each finding "
                              "has a severity (fatal, warning, info), the host, what is wrong and the fix. Exit code "
                              "0: nothing fatal; 1: a fatal finding (kfab up would stop on it).")
    p.add_argument("-i", "--inventory", required=True, help="inventory file (Ansible YAML format)")
    p.add_argument("playbook", nargs="?", default="site.yml",
                   help="play file whose roles say what each host needs (default: site.yml)")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS")
    p.add_argument("-l", "--limit", help="only these hosts/groups (Ansible host pattern)")
    p.add_argument("-f", "--forks", type=int, default=10, help="hosts examined in parallel (default 10)")
    p.add_argument("--json", action="store_true", help="the findings as JSON (with -v: each host's facts too)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="show info findings too")
    p.add_argument("-K", "--ask-become-pass", action="store_true", help="ask for the sudo password")
    p.add_argument("--vault-password-file", action="append", default=[], metavar="FILE")
    p.set_defaults(func=run_doctor)

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
    _bundle_options(p, "plan as `kfab up --bundle FILE` would run: packages and wheels from this offline bundle")
    _connection_options(p)
    p.set_defaults(func=run_up, check=True, diff=True, fail_fast=False, plan=True)


def _bundle_options(p, what: str) -> None:
    p.add_argument("--bundle", type=Path, metavar="FILE", help=what)
    p.add_argument("--bundle-port", type=int, default=DEFAULT_PORT,
                   help=f"port the bundle's packages are served on (default {DEFAULT_PORT})")


def _connection_options(p) -> None:
    p.add_argument("--profile", action="store_true", help="after the recap, the slowest tasks and their time")
    p.add_argument("-K", "--ask-become-pass", action="store_true",
                   help="ask for the sudo password (else ansible_become_password, else sudo -n)")
    p.add_argument("--vault-password-file", action="append", default=[], metavar="FILE",
                   help="decrypt ansible-vault files and !vault strings with this password (repeatable; "
                        "default $ANSIBLE_VAULT_PASSWORD_FILE)")


def run_up(args) -> int:
    options = dict(limit=args.limit, tags=args.tags, check=args.check, diff=args.diff, verbose=args.verbose,
                   forks=args.forks, fail_fast=args.fail_fast, plan=args.plan, as_json=args.json,
                   ask_become_pass=args.ask_become_pass, vault_password_files=args.vault_password_file,
                   profile=args.profile, skip_doctor=getattr(args, "skip_doctor", False))
    if getattr(args, "bundle", None) is not None:
        return up_with_bundle(args.bundle, args.inventory, args.playbook, args.extra_vars, args.bundle_port,
                              **options)
    return provision(args.inventory, args.playbook, args.extra_vars, **options)


def run_bundle_create(args) -> int:
    return create(args.inventory, args.playbook, args.output, args.resolve_on, args.extra_vars)


def run_doctor(args) -> int:
    return doctor(args.inventory, args.playbook, args.extra_vars, limit=args.limit, as_json=args.json,
                  verbose=args.verbose, forks=args.forks, ask_become_pass=args.ask_become_pass,
                  vault_password_files=args.vault_password_file)
