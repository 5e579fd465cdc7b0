"""The `kfab` command: parse, call, print. Each component adds its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType


# Each component's `commands` module (kfab.<package>.commands) exposes add_commands(subparsers); a sub-command
# sets `func` (args -> exit code). They are imported when asked for: a long-running `kfab server` or `kfab node`
# then carries only its own component, not the provisioner, SSH, Podman and HTTP libraries of all the others
# (28 MB of kfab server's RSS). In the order they add their sub-commands, each package with the sub-commands it
# adds or extends; a command no one claims here loads every component. tests/unit/test_cli_components.py holds
# this table to what add_commands does.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lab", ("lab",)),
    ("provision", ("up", "doctor", "plan", "bundle")),
    ("controlplane", ("server", "rotate-encryption-key", "apiserver", "controller-manager", "scheduler", "vip")),
    ("pki", ("pki",)),
    ("node", ("node", "node-cert", "hollow-node")),
    ("proxy", ("proxy",)),
    ("ingress", ("ingress",)),
    ("dns", ("dns", "dns-corefile")),
    ("registry", ("image",)),
    ("cache", ("cache",)),
    ("storage_host", ("provisioner",)),
    ("ops", ("add-node", "backup", "drain", "etcd", "kubeconfig", "remove-node", "replace-etcd-member", "reset",
             "restore", "rotate-certs", "uncordon", "upgrade", "rotate-encryption-key")),
    ("dashboard", ("dashboard",)),
)
# ops adds -i to controlplane's rotate-encryption-key, so its add_commands needs controlplane's before it.
EXTENDS = {"ops": "controlplane"}


def commands_of(package: str) -> ModuleType:
    return importlib.import_module(f"kfab.{package}.commands")


def _command_of(argv: list[str]) -> str | None:
    """The sub-command argv names (its first word), or None (no command, or an option such as --help first)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or, given `command` that a component claims, of that command's
    components only (the others are not imported)."""
    parser = argparse.ArgumentParser(prog="kfab", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    claiming = {package for package, names in COMPONENTS if command in names}
    claiming |= {EXTENDS[package] for package in claiming if package in EXTENDS}
    for package, _ in COMPONENTS:
        if package in claiming or not claiming:
            commands_of(package).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
