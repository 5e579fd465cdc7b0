"""`kfab server` (the one-machine control plane) and `kfab apiserver` (the API server alone, any store)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from kfab.api.server import ServerConfig, run
from kfab.controllers.manager import in_process_components
from kfab.pki import PKIError
from kfab.store import BadStoreURL, StoreError


def _common(p) -> None:
    p.add_argument("--data-dir", required=True, type=Path,
                   help="where the PKI (pki/) and admin.kubeconfig live (and the SQLite state for `kfab server`)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443; 0 picks a free one)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--token-auth-file", type=Path,
                   help="bearer tokens, kube-apiserver CSV format: token,user,uid,\"group1,group2\"")
    p.add_argument("--tls-san", action="append", default=[],
                   help="extra DNS name or IP for the serving certificate; repeatable")
    p.add_argument("--advertise-address", metavar="IP",
                   help="the address in-cluster clients reach this API server at (the `kubernetes` Service's "
                        "endpoint); default: --bind, or this host's outgoing address when binding all")
    p.add_argument("--compaction-interval", type=float, default=300.0, metavar="SECONDS",
                   help="every SECONDS, forget store history older than the previous interval (default 300)")
    p.add_argument("-v", "--verbose", action="store_true", help="log each component's progress")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "server", help="run the control plane on this machine (API server over SQLite in DATA_DIR)",
        description="Run the control plane on one machine: the Kubernetes-compatible API server over a SQLite "
                    "store in DATA_DIR, TLS from DATA_DIR/pki, an admin kubeconfig in DATA_DIR/admin.kubeconfig, "
                    "and the controller-manager and scheduler in the same process. Stops cleanly on SIGTERM.")
    _common(p)
    p.add_argument("--disable-controllers", action="store_true",
                   help="do not run the controller-manager in this process (run `kfab controller-manager` instead)")
    p.set_defaults(func=run_server)

    p = subparsers.add_parser(
        "apiserver", help="run the API server alone over a store URL (sqlite:///, etcd:// or etcd+https://)",
        description="Run the API server over the state store a URL names: sqlite:///abs/path/state.db, or "
                    "etcd://host:port[,host:port...] so that several API servers share one etcd cluster, or "
                    "etcd+https://host:port[,...]?cacert=CA&cert=CRT&key=KEY for etcd over TLS with a client "
                    "certificate.")
    p.add_argument("--store", required=True, help="sqlite:///abs/path/state.db, etcd://host:port[,host:port...] "
                                                  "or etcd+https://host:port[,...]?cacert=CA&cert=CRT&key=KEY")
    _common(p)
    p.set_defaults(func=run_apiserver)


def _config(args, store_url: str) -> ServerConfig:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return ServerConfig(store_url=store_url, data_dir=args.data_dir.resolve(), bind=args.bind, port=args.port,
                        tokens_file=args.token_auth_file, tls_sans=args.tls_san,
                        compaction_interval=args.compaction_interval, advertise_address=args.advertise_address,
                        # The controllers (and the scheduler) join `kfab server` here (k3s-style).
                        components=in_process_components(args))


def _run(config: ServerConfig) -> int:
    """Serve; a failure to start (store, PKI, port, data dir) is one line on stderr and exit code 1."""
    try:
        return run(config)
    except StoreError as e:
        # The store's own messages name it; say which store when one does not.
        message = str(e) if config.store_url in str(e) else f"state store {config.store_url}: {e}"
        print(f"kfab: {message}", file=sys.stderr)
        return 1
    except (BadStoreURL, PKIError, OSError, ValueError) as e:
        print(f"kfab: {e}", file=sys.stderr)
        return 1


def run_server(args) -> int:
    return _run(_config(args, f"sqlite:///{args.data_dir.resolve() / 'state.db'}"))


def run_apiserver(args) -> int:
    return _run(_config(args, args.store))
