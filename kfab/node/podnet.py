"""The node's pod network: a Podman bridge network on the node's podCIDR, and host-gw routes to the others.

`PodNetwork.ensure()` creates the Podman network `podnet` on this node's /24 (pods get their IPs there).
`run_pod_network(client, node_name, cluster_cidr)` keeps the cross-node part true for as long as the agent
runs (LAB.md's measured recipe):
- a route to every other Node's `spec.podCIDR` via its InternalIP; routes of deleted nodes are removed;
- `iptables -t nat -I POSTROUTING 1 -s <clusterCIDR> -d <clusterCIDR> -j RETURN` so pod-to-pod traffic
  keeps its pod source address (netavark masquerades everything leaving the pod bridge otherwise).
It is watch-driven (a new Node -> routes within a second or so) and re-applies everything at start and
every RESYNC seconds, because routes and rules are lost when the host restarts or someone flushes them.

Why `ip route replace` rather than pyroute2: iproute2 is already on every host (role `common`), the job is a
handful of idempotent commands per change, and `proto 77` tags kfab's routes so they can be listed and
removed after a restart without any state file — no extra dependency to ship in the wheelhouse.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging

from kfab.node.runtime import PodmanRuntime
from kfab.objects.meta import spec_of, status_of

log = logging.getLogger(__name__)

ROUTE_PROTO = "77"      # the routing-protocol tag of kfab's pod routes (`ip route show proto 77`)
RESYNC = 30.0


class PodNetwork:
    def __init__(self, runtime: PodmanRuntime, name: str = "podnet"):
        self.runtime = runtime
        self.name = name
        self.pod_cidr: str | None = None

    async def ensure(self, pod_cidr: str) -> None:
        net = ipaddress.ip_network(pod_cidr)
        await self.runtime.ensure_network(self.name, str(net), str(net.network_address + 1))
        self.pod_cidr = pod_cidr

    def sandbox_options(self) -> dict:
        return {}


def internal_ip(node: dict) -> str | None:
    for a in status_of(node).get("addresses") or []:
        if a.get("type") == "InternalIP" and a.get("address"):
            return a["address"]
    return None


def desired_routes(nodes: list[dict], node_name: str) -> dict[str, str]:
    """podCIDR -> gateway (the node's InternalIP) for every other node that has both."""
    routes: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        if node["metadata"]["name"] == node_name:
            continue
        cidr, via = spec_of(node).get("podCIDR"), internal_ip(node)
        if not cidr or not via:
            continue
        try:
            cidr = str(ipaddress.ip_network(cidr))
            ipaddress.IPv4Address(via)
        except ValueError:
            log.warning("node %s: unusable podCIDR %r or InternalIP %r", node["metadata"]["name"], cidr, via)
            continue
        routes[cidr] = via
    return routes


class CommandError(Exception):
    pass


async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise CommandError(f"{' '.join(argv)} exited {proc.returncode}: {err.decode().strip()}")
    return out.decode()


class HostRoutes:
    """This host's kfab routes and no-SNAT rule. `prefix` runs the commands elsewhere (e.g. `nsenter -t PID -n`)."""

    def __init__(self, cluster_cidr: str, prefix: tuple[str, ...] = ()):
        self.cluster_cidr = str(ipaddress.ip_network(cluster_cidr))
        self.prefix = prefix

    async def current(self) -> dict[str, str]:
        out = await _run(*self.prefix, "ip", "-j", "route", "show", "proto", ROUTE_PROTO)
        return {r["dst"]: r.get("gateway", "") for r in json.loads(out or "[]")}

    async def apply(self, wanted: dict[str, str]) -> list[str]:
        """Make kfab's routes exactly `wanted`; returns what changed (for the log)."""
        changes, errors = [], []
        have = await self.current()
        # One unreachable gateway must not keep the other nodes' routes from being written.
        for cidr, via in wanted.items():
            if have.get(cidr) != via:
                try:
                    await _run(*self.prefix, "ip", "route", "replace", cidr, "via", via, "proto", ROUTE_PROTO)
                    changes.append(f"{cidr} via {via}")
                except CommandError as e:
                    errors.append(str(e))
        for cidr in sorted(have.keys() - wanted.keys()):
            await _run(*self.prefix, "ip", "route", "del", cidr, "proto", ROUTE_PROTO)
            changes.append(f"removed {cidr}")
        await self.ensure_no_snat()
        if errors:
            raise CommandError("; ".join(errors))
        return changes

    async def ensure_no_snat(self) -> None:
        rule = ["POSTROUTING", "-s", self.cluster_cidr, "-d", self.cluster_cidr, "-j", "RETURN"]
        try:
            await _run(*self.prefix, "iptables", "-w", "-t", "nat", "-C", *rule)
        except CommandError:
            await _run(*self.prefix, "iptables", "-w", "-t", "nat", "-I", rule[0], "1", *rule[1:])


async def run_pod_network(client, node_name: str, cluster_cidr: str, prefix: tuple[str, ...] = ()) -> None:
    """Keep routes to every other node's pod CIDR and the no-SNAT rule; runs until cancelled."""
    from kfab.client import rt_of
    from kfab.machinery.informer import Informer

    nodes = Informer(client, rt_of("Node"))
    host = HostRoutes(cluster_cidr, prefix)
    changed = asyncio.Event()
    nodes.add_handlers(lambda *_: changed.set(), lambda *_: changed.set(), lambda *_: changed.set())
    informer = asyncio.create_task(nodes.run(), name="pod-network-nodes")
    try:
        await nodes.synced.wait()
        while True:
            changed.clear()
            try:
                for change in await host.apply(desired_routes(nodes.list(), node_name)):
                    log.info("pod network: %s", change)
            except (CommandError, OSError, ValueError) as e:
                log.error("pod network: %s", e)
            try:
                await asyncio.wait_for(changed.wait(), RESYNC)
            except asyncio.TimeoutError:
                pass
    finally:
        informer.cancel()
        await asyncio.gather(informer, return_exceptions=True)
