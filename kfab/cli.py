"""The `kfab` command: parse, call, print. Each component adds its own sub-commands."""

from __future__ import annotations

import argparse
import sys

from kfab.cache import commands as cache_commands
from kfab.controlplane import commands as controlplane_commands
from kfab.dashboard import commands as dashboard_commands
from kfab.dns import commands as dns_commands
from kfab.ingress import commands as ingress_commands
from kfab.lab import commands as lab_commands
from kfab.node import commands as node_commands
from kfab.ops import commands as ops_commands
from kfab.pki import commands as pki_commands
from kfab.provision import commands as provision_commands
from kfab.proxy import commands as proxy_commands
from kfab.registry import commands as registry_commands
from kfab.storage_host import commands as storage_commands

# Each module exposes add_commands(subparsers); a sub-command sets `func` (args -> exit code).
COMPONENTS = (lab_commands, provision_commands, controlplane_commands, pki_commands, node_commands, proxy_commands,
              ingress_commands, dns_commands, registry_commands, cache_commands, storage_commands, ops_commands,
              dashboard_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kfab", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for component in COMPONENTS:
        component.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
