"""`kfab node` (the node agent), `kfab node-cert` (its serving certificate from the cluster CA) and
`kfab hollow-node` (simulated nodes for tests and benchmarks)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from kfab.node import hollow
from kfab.node.agent import AgentConfig, run_agent
from kfab.node.runtime import DEFAULT_SOCKET
from kfab.pki import PKIError, write_node_serving_cert


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

    p = subparsers.add_parser(
        "hollow-node", help="run N simulated nodes (kubemark-style) that register, heartbeat and 'run' pods",
        description="Simulated node agents for tests and benchmarks: each registers a Node, renews its Lease in "
                    "kube-node-lease and moves pods bound to it to Running/Ready without running containers.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--name-prefix", default="hollow-node-")
    p.add_argument("--lease-interval", type=float, default=10.0, metavar="SECONDS",
                   help="renew each node's Lease this often (default 10, as kubelet)")
    p.add_argument("--delete-on-exit", action="store_true", help="delete the Nodes and Leases when stopped")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="the local control plane's data dir: with its CA, each node serves synthetic resource "
                        "metrics on a 127.250.x.y address (kubectl top, autoscaling tests)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_hollow_node)


def run_node(args) -> int:
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
    return run_agent(config, args.verbose)


def run_node_cert(args) -> int:
    try:
        cert = write_node_serving_cert(args.data_dir, args.node_name, args.ip, args.out_dir)
    except PKIError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"wrote {cert}, node.key, ca.crt")
    return 0


def run_hollow_node(args) -> int:
    if args.count < 1:
        print("kfab hollow-node: --count must be at least 1", file=sys.stderr)
        return 2
    return hollow.run(args.kubeconfig, args.count, args.name_prefix, args.lease_interval, args.delete_on_exit,
                      args.verbose, args.data_dir)
