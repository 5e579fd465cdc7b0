"""The `kfab` command: parse, call, print. Each component adds its own sub-commands."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Callable


# Each component's `commands` module exposes add_commands(subparsers); a sub-command sets `func` (args -> exit
# code). They are imported when asked for: a long-running `kfab server` or `kfab node` then carries only its own
# component, not the provisioner, SSH, Podman and HTTP libraries of all the others (28 MB of kfab server's RSS).
def _lab() -> ModuleType:
    from kfab.lab import commands
    return commands


def _provision() -> ModuleType:
    from kfab.provision import commands
    return commands


def _controlplane() -> ModuleType:
    from kfab.controlplane import commands
    return commands


def _pki() -> ModuleType:
    from kfab.pki import commands
    return commands


def _node() -> ModuleType:
    from kfab.node import commands
    return commands


def _proxy() -> ModuleType:
    from kfab.proxy import commands
    return commands


def _ingress() -> ModuleType:
    from kfab.ingress import commands
    return commands


def _dns() -> ModuleType:
    from kfab.dns import commands
    return commands


def _registry() -> ModuleType:
    from kfab.registry import commands
    return commands


def _cache() -> ModuleType:
    from kfab.cache import commands
    return commands


def _storage_host() -> ModuleType:
    from kfab.storage_host import commands
    return commands


def _ops() -> ModuleType:
    from kfab.ops import commands
    return commands


def _dashboard() -> ModuleType:
    from kfab.dashboard import commands
    return commands


# In the order they add their sub-commands, each with the sub-commands it adds or extends; a command no one
# claims here loads every component. tests/unit/test_cli_components.py holds this table to what add_commands does.
COMPONENTS: tuple[tuple[Callable[[], ModuleType], tuple[str, ...]], ...] = (
    (_lab, ("lab",)),
    (_provision, ("up", "doctor", "plan", "bundle")),
    (_controlplane, ("server", "rotate-encryption-key", "apiserver", "controller-manager", "scheduler", "vip")),
    (_pki, ("pki",)),
    (_node, ("node", "node-cert", "hollow-node")),
    (_proxy, ("proxy",)),
    (_ingress, ("ingress",)),
    (_dns, ("dns", "dns-corefile")),
    (_registry, ("image",)),
    (_cache, ("cache",)),
    (_storage_host, ("provisioner",)),
    (_ops, ("add-node", "backup", "drain", "etcd", "kubeconfig", "remove-node", "replace-etcd-member", "reset",
            "restore", "rotate-certs", "uncordon", "upgrade", "rotate-encryption-key")),
    (_dashboard, ("dashboard",)),
)
# ops adds -i to controlplane's rotate-encryption-key, so its add_commands needs controlplane's before it.
EXTENDS = {_ops: _controlplane}


def _command_of(argv: list[str]) -> str | None:
    """The sub-command argv names (its first word), or None (no command, or an option such as --help first)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or, given `command` that a component claims, of that command's
    components only (the others are not imported)."""
    parser = argparse.ArgumentParser(prog="kfab", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    claiming = {load for load, names in COMPONENTS if command in names}
    claiming |= {EXTENDS[load] for load in claiming if load in EXTENDS}
    for load in [load for load, _ in COMPONENTS if load in claiming or not claiming]:
        load().add_commands(subparsers)
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
