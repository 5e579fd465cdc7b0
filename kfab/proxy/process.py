"""The `kfab proxy` process: one Proxier for this node until SIGTERM/SIGINT, or the cleanup of its table."""

from __future__ import annotations

import asyncio
import logging
import sys

from kfab.client import APIStatusError, Client, KubeconfigError, rt_of
from kfab.daemon import run_until_signal, setup_logging
from kfab.proxy.announce import Announcer
from kfab.proxy.policy import PolicyEnforcer
from kfab.proxy.policy_rules import TABLE as POLICY_TABLE
from kfab.proxy.proxier import NftError, Proxier, bridged_traffic_filtered, run_nft
from kfab.proxy.rules import TABLE
from kfab.objects.meta import spec_of, status_of


async def _node_facts(client, node_name: str) -> tuple[list[str], str | None]:
    node = await client.get(rt_of("Node"), None, node_name)
    ips = [a["address"] for a in status_of(node).get("addresses") or [] if a.get("type") == "InternalIP"]
    return ips, spec_of(node).get("podCIDR")


async def _until_all_stopped(parts: list) -> None:
    """Run the parts; when one fails or a signal cancels us, cancel them all and wait for each one's cleanup.

    A bare gather would return at the first part that ends, and the client would close under the others: the
    announcer's release of its Leases (what lets another worker take a pool address at once on a clean stop,
    instead of after the Lease expires) never got through."""
    tasks = [asyncio.ensure_future(part) for part in parts]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            if not task.cancelling():   # a second cancel would cut short the cleanup the first one started
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def cleanup(nft: list[str], verbose: bool = False) -> int:
    """Remove the tables `ip kfab` and `inet kfab-policy` (and nothing else)."""
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        asyncio.run(run_nft(nft, f"table ip {TABLE} {{}}\ndelete table ip {TABLE}\n"
                                 f"table inet {POLICY_TABLE} {{}}\ndelete table inet {POLICY_TABLE}\n"))
    except (NftError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


def run(kubeconfig: str, node_name: str | None, node_ips: list[str], cluster_cidr: str | None, nft: list[str],
        verbose: bool = False) -> int:
    """NodePorts answer on `node_ips` (default: the Node's InternalIPs); the Node's podCIDR is the local pod
    network unless bridged traffic is filtered."""
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-proxy")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def serve() -> int:
        nonlocal node_ips
        pod_cidr = None
        try:
            if node_name:
                try:
                    ips, pod_cidr = await _node_facts(client, node_name)
                except APIStatusError as e:
                    print(f"ERROR: node {node_name}: {e}", file=sys.stderr)
                    return 1
                node_ips = node_ips or ips
            local = None if bridged_traffic_filtered() else pod_cidr
            parts = [Proxier(client, node_ips, cluster_cidr, local, nft, node_name).run()]
            if node_name:  # NetworkPolicies are enforced per node, for the node's own pods
                parts.append(PolicyEnforcer(client, node_name, nft).run())
            # This node may be elected to announce LoadBalancer pool addresses — on its own network only (an
            # --nft-command into another namespace, as tests use, must not put addresses on this host's).
            if node_name and node_ips and len(nft) == 1:
                parts.append(Announcer(client, node_name, node_ips[0]).run())
            await _until_all_stopped(parts)
        finally:
            await client.close()
        return 0

    return run_until_signal(serve())
