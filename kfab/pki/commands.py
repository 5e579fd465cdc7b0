"""`kfab pki`: the cluster PKI without a server."""

from __future__ import annotations

import sys
from pathlib import Path

from kfab.pki.ca import PKIError
from kfab.pki.certs import ensure_control_plane_pki


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "pki", help="create the cluster PKI (CA, API server and admin certificates) without starting a server",
        description="Create what is missing of DIR/pki (keeps existing files). Control-plane hosts of one cluster "
                    "share the CA: create it once, copy DIR/pki to each host; each API server then issues "
                    "its own serving certificate from it for its own names.")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--hostname", action="append", default=[], help="DNS name for the serving cert; repeatable")
    p.add_argument("--ip", action="append", default=[], help="IP address for the serving cert; repeatable")
    p.set_defaults(func=run_pki)


def run_pki(args) -> int:
    try:
        pki = ensure_control_plane_pki(args.data_dir, args.hostname, args.ip)
    except (PKIError, OSError) as e:
        print(f"kfab pki: {e}", file=sys.stderr)
        return 1
    for path in sorted(pki.dir.iterdir()):
        print(path)
    return 0
