"""`kfab proxy`: the service proxy of one node (nftables table `ip kfab`)."""

from __future__ import annotations

import shlex

from kfab.proxy import process


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("proxy", help="the service proxy: program nftables from Services and EndpointSlices")
    p.add_argument("--kubeconfig", required=True, help="credentials (e.g. `kfab kubeconfig --user system:kube-proxy`)")
    p.add_argument("--node-name", default=None,
                   help="this host's Node: its InternalIPs answer NodePorts, its podCIDR is the local pod network")
    p.add_argument("--node-ip", action="append", default=[],
                   help="address where NodePorts answer (repeatable; default: the Node's, else every local one)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="pod network; traffic to ClusterIPs from outside it is masqueraded ('' to never)")
    p.add_argument("--nft-command", default="nft",
                   help="how to run nft (e.g. 'nsenter -t PID -n nft' to program another network namespace)")
    p.add_argument("--cleanup", action="store_true", help="remove the table `ip kfab` and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_proxy)


def run_proxy(args) -> int:
    nft = shlex.split(args.nft_command)
    if args.cleanup:
        return process.cleanup(nft, args.verbose)
    return process.run(args.kubeconfig, args.node_name, list(args.node_ip), args.cluster_cidr or None, nft,
                       args.verbose)
