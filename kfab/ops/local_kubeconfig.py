"""`kfab kubeconfig --data-dir DIR`: a kubeconfig for the admin, or for any user with a client certificate signed
by the cluster CA, straight from a control-plane data directory (no inventory)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from kfab.pki.ca import PKIError
from kfab.pki.certs import ControlPlanePKI, issue_client_cert
from kfab.pki.kubeconfig import kubeconfig, server_url_of, write_kubeconfig

# The API server writes this file when it starts; its server URL is the one clients should use.
ADMIN_KUBECONFIG = "admin.kubeconfig"


def run(args) -> int:
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
