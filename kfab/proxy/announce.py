"""LoadBalancer pool addresses on the LAN, as MetalLB's L2 mode: for each address one node — the holder of
the Lease kube-system/kfab-lb-<address> — puts it on the interface that carries its own InternalIP and sends
gratuitous ARP, so the LAN's switches and hosts send that address's traffic to it; the proxy's rules there
forward it to the Service's endpoints. When the holder stops renewing (it died, or its proxy stopped), another
node takes the Lease after its duration and announces the address from its interface (kfab.machinery.leased_address).

Addresses that are node InternalIPs (Services without a pool) are the nodes' own and never announced.
"""

from __future__ import annotations

import asyncio
import logging

from kfab.client import Client, rt_of
from kfab.machinery.informer import Informer
from kfab.machinery.leased_address import LeaseTiming, contend_for_address
from kfab.objects.meta import spec_of, status_of

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-system"
TIMING = LeaseTiming(lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)


def lease_name(address: str) -> str:
    return "kfab-lb-" + address.replace(".", "-")


def pool_addresses(services: list[dict], nodes: list[dict]) -> set[str]:
    """LoadBalancer addresses that are not some node's own address."""
    node_ips = {a.get("address") for n in nodes for a in status_of(n).get("addresses") or []}
    out = set()
    for svc in services:
        if spec_of(svc).get("type") != "LoadBalancer":
            continue
        for ingress in (status_of(svc).get("loadBalancer") or {}).get("ingress") or []:
            ip = ingress.get("ip")
            if ip and ip not in node_ips:
                out.add(ip)
    return out


class Announcer:
    def __init__(self, client: Client, node_name: str, node_ip: str):
        self.client = client
        self.node_name, self.node_ip = node_name, node_ip
        self.services = Informer(client, rt_of("Service"))
        self.nodes = Informer(client, rt_of("Node"))
        self.tasks: dict[str, asyncio.Task] = {}
        self.held: set[str] = set()
        self._changed = asyncio.Event()

    async def _contend(self, address: str) -> None:
        await contend_for_address(self.client, address, self.node_ip, self.node_name, lease_name(address),
                                  LEASE_NAMESPACE, TIMING, self.held)

    def _on_change(self, *_objs) -> None:
        self._changed.set()

    async def reconcile(self) -> None:
        wanted = pool_addresses(self.services.list(), self.nodes.list())
        for address in wanted - set(self.tasks):
            self.tasks[address] = asyncio.create_task(self._contend(address), name=f"announce-{address}")
        for address in set(self.tasks) - wanted:
            task = self.tasks.pop(address)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        informers = (self.services, self.nodes)
        for informer in informers:
            informer.add_handlers(self._on_change, self._on_change, self._on_change)
        watches = [asyncio.create_task(i.run(), name=i.rt.plural) for i in informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i in informers))
            self._changed.set()
            while True:
                await self._changed.wait()
                self._changed.clear()
                await self.reconcile()
        finally:
            for task in [*watches, *self.tasks.values()]:
                task.cancel()
            await asyncio.gather(*watches, *self.tasks.values(), return_exceptions=True)
