"""`kfab node` (the node agent) and `kfab node-cert` (its serving certificate from the cluster CA)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path

from kfab.node.runtime import DEFAULT_SOCKET


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("node", help="the node agent: register this host and run its pods with Podman")
    p.add_argument("--kubeconfig", required=True, help="the node's kubeconfig (its own client certificate)")
    p.add_argument("--node-name", default=None, help="Node name (default: the host name)")
    p.add_argument("--podman-socket", default=DEFAULT_SOCKET, help=f"Podman API socket (default {DEFAULT_SOCKET})")
    p.add_argument("--node-ip", default=None, help="InternalIP (default: the address that reaches the API server)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod network of the cluster (one /24 per node)")
    p.add_argument("--pods-dir", default="/var/lib/kfab/pods", help="where pod volumes live on this host")
    p.add_argument("--port", type=int, default=10250, help="HTTPS port of the logs endpoint (default 10250)")
    p.add_argument("--serving-cert", type=Path, help="serving certificate (PEM) signed by the cluster CA")
    p.add_argument("--serving-key", type=Path, help="its key")
    p.add_argument("--client-ca", type=Path, help="CA whose client certificates may read logs (the cluster CA)")
    p.add_argument("--cluster-dns", default=None,
                   help="DNS Service IP for pods with dnsPolicy ClusterFirst (default: the host's resolver)")
    p.add_argument("--cluster-domain", default="cluster.local", help="cluster DNS domain (default cluster.local)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_node)

    c = subparsers.add_parser("node-cert", help="issue a node agent's serving certificate from the cluster CA")
    c.add_argument("--data-dir", required=True, type=Path, help="the control plane's data dir (holds pki/)")
    c.add_argument("--node-name", required=True)
    c.add_argument("--ip", action="append", default=[], help="the node's IP (repeatable)")
    c.add_argument("--out-dir", required=True, type=Path, help="writes node.crt, node.key, ca.crt there")
    c.set_defaults(func=run_node_cert)


def run_node(args) -> int:
    from kfab.client import KubeconfigError
    from kfab.node.agent import AgentConfig, NodeAgent

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tls = [args.serving_cert, args.serving_key, args.client_ca]
    if any(tls) and not all(tls):
        print("ERROR: --serving-cert, --serving-key and --client-ca go together", file=sys.stderr)
        return 2
    for path in filter(None, tls):
        if not path.is_file():
            print(f"ERROR: {path}: no such file", file=sys.stderr)
            return 2
    config = AgentConfig(kubeconfig=Path(args.kubeconfig), node_name=args.node_name or socket.gethostname(),
                         podman_socket=args.podman_socket, node_ip=args.node_ip, cluster_cidr=args.cluster_cidr,
                         pods_root=Path(args.pods_dir), port=args.port, serving_cert=args.serving_cert,
                         serving_key=args.serving_key, client_ca=args.client_ca, cluster_dns=args.cluster_dns,
                         cluster_domain=args.cluster_domain)
    try:
        agent = NodeAgent(config)
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def main() -> None:
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0


def run_node_cert(args) -> int:
    from kfab.pki import PKIError, load_control_plane_pki
    from kfab.pki.ca import issue, save

    try:
        pki = load_control_plane_pki(args.data_dir)
    except PKIError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    pair = issue(pki.load_ca(), f"system:node:{args.node_name}", ("system:nodes",),
                 server_names=(args.node_name,), server_ips=tuple(args.ip))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save(pair, args.out_dir / "node.crt", args.out_dir / "node.key")
    (args.out_dir / "ca.crt").write_bytes(pki.ca_cert_pem)
    print(f"wrote {args.out_dir / 'node.crt'}, node.key, ca.crt")
    return 0
