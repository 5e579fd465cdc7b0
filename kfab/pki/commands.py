"""`kfab pki` (the cluster PKI without a server) and `kfab kubeconfig --data-dir` (a kubeconfig for the admin, or
for any user with a client certificate signed by the cluster CA)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from kfab.pki.ca import PKIError
from kfab.pki.certs import ControlPlanePKI, ensure_control_plane_pki, issue_client_cert
from kfab.pki.kubeconfig import kubeconfig, server_url_of, write_kubeconfig

# The API server writes this file when it starts; its server URL is the one clients should use.
ADMIN_KUBECONFIG = "admin.kubeconfig"


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


def run_kubeconfig(args) -> int:
    """`kfab kubeconfig --data-dir DIR` (the parser is kfab.ops.commands': it also takes -i INVENTORY)."""
    data_dir: Path = args.data_dir
    pki = ControlPlanePKI(data_dir / "pki")
    if args.group and not args.user:
        print("kfab kubeconfig: --group needs --user (the admin's groups are fixed: system:masters)", file=sys.stderr)
        return 2
    server = args.server or server_url_of(data_dir / ADMIN_KUBECONFIG)
    if not server:
        print(f"kfab kubeconfig: no server URL recorded in {data_dir / ADMIN_KUBECONFIG}; pass --server https://HOST:PORT",
              file=sys.stderr)
        return 2
    try:
        ca_pem = pki.ca_cert_path.read_bytes() if pki.ca_cert_path.exists() else None
        if ca_pem is None:
            raise PKIError(f"{pki.ca_cert_path}: missing (has an API server run with --data-dir {data_dir}?)")
        if args.user:
            cert_pem, key_pem = issue_client_cert(pki, args.user, args.group)
            user = args.user
        else:
            cert_pem, key_pem = pki.admin_cert_pem, pki.admin_key_pem
            user = "kubernetes-admin"
    except (PKIError, OSError) as e:
        print(f"kfab kubeconfig: {e}", file=sys.stderr)
        return 1
    if args.output:
        write_kubeconfig(args.output, server, ca_pem, cert_pem, key_pem, user=user)
        print(f"wrote {args.output} (user {user})", file=sys.stderr)
    else:
        sys.stdout.write(yaml.safe_dump(kubeconfig(server, ca_pem, cert_pem, key_pem, user=user), sort_keys=False))
    return 0


def run_pki(args) -> int:
    try:
        pki = ensure_control_plane_pki(args.data_dir, args.hostname, args.ip)
    except (PKIError, OSError) as e:
        print(f"kfab pki: {e}", file=sys.stderr)
        return 1
    for path in sorted(pki.dir.iterdir()):
        print(path)
    return 0
