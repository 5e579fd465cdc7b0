"""`kfab proxy`: the service proxy of one node (nftables table `ip kfab`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import sys


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


async def _node_facts(client, node_name: str) -> tuple[list[str], str | None]:
    from kfab.client import rt_of
    node = await client.get(rt_of("Node"), None, node_name)
    ips = [a["address"] for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]
    return ips, (node.get("spec") or {}).get("podCIDR")


def run_proxy(args) -> int:
    from kfab.client import APIStatusError, Client, KubeconfigError
    from kfab.proxy.proxier import NftError, Proxier, bridged_traffic_filtered, run_nft
    from kfab.proxy.rules import TABLE

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nft = shlex.split(args.nft_command)
    if args.cleanup:
        try:
            asyncio.run(run_nft(nft, f"table ip {TABLE} {{}}\ndelete table ip {TABLE}\n"))
        except (NftError, OSError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        client = Client.from_kubeconfig(args.kubeconfig, user_agent="kfab-proxy")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def main() -> int:
        node_ips, pod_cidr = list(args.node_ip), None
        if args.node_name:
            try:
                ips, pod_cidr = await _node_facts(client, args.node_name)
            except APIStatusError as e:
                print(f"ERROR: node {args.node_name}: {e}", file=sys.stderr)
                await client.close()
                return 1
            node_ips = node_ips or ips
        local = None if bridged_traffic_filtered() else pod_cidr
        proxier = Proxier(client, node_ips, args.cluster_cidr or None, local, nft)
        task = asyncio.create_task(proxier.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await client.close()
        return 0

    return asyncio.run(main())
