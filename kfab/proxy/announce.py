"""LoadBalancer pool addresses on the LAN, as MetalLB's L2 mode: for each address one node — the holder of
the Lease kube-system/kfab-lb-<address> — puts it on the interface that carries its own InternalIP and sends
gratuitous ARP, so the LAN's switches and hosts send that address's traffic to it; the proxy's rules there
forward it to the Service's endpoints. When the holder stops renewing (it died, or its proxy stopped), another
node takes the Lease after LEASE_DURATION and announces the address from its interface.

Addresses that are node InternalIPs (Services without a pool) are the nodes' own and never announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct

from kfab.client import Client, rt_of
from kfab.machinery.informer import Informer
from kfab.machinery.leader import LeaderElectionConfig, LeaderElector
from kfab.objects.meta import spec_of, status_of

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-system"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6.0, 4.0, 1.0
GARP_COUNT = 3
ETH_P_ARP = 0x0806


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


def gratuitous_arp(mac_text: str, address: str) -> bytes:
    """An Ethernet broadcast ARP request asking for `address` from `address` (RFC 5227's announcement)."""
    mac = bytes.fromhex(mac_text.replace(":", ""))
    ip = ipaddress.IPv4Address(address).packed
    ethernet = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip
    return ethernet + arp


async def _ip(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def mac_of(interface: str) -> str:
    """The interface's Ethernet address, as `ip link` shows it (the namespace's own, unlike a stale /sys)."""
    fields = (await _ip("-o", "link", "show", "dev", interface)).split()
    if "link/ether" not in fields:
        raise OSError(f"{interface} has no Ethernet address")
    return fields[fields.index("link/ether") + 1]


async def interface_of(address: str) -> str:
    """The interface that holds `address` (the node's InternalIP)."""
    for line in (await _ip("-o", "-4", "addr", "show")).splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == address:
            return fields[1].split("@")[0]
    raise OSError(f"no interface holds {address}")


class Announcer:
    def __init__(self, client: Client, node_name: str, node_ip: str):
        self.client = client
        self.node_name, self.node_ip = node_name, node_ip
        self.services = Informer(client, rt_of("Service"))
        self.nodes = Informer(client, rt_of("Node"))
        self.tasks: dict[str, asyncio.Task] = {}
        self.held: set[str] = set()
        self._changed = asyncio.Event()

    async def _hold(self, address: str) -> None:
        """While holding the address's Lease: the address on our interface, announced; removed after."""
        interface = await interface_of(self.node_ip)
        await _ip("addr", "replace", f"{address}/32", "dev", interface)
        self.held.add(address)
        try:
            frame = gratuitous_arp(await mac_of(interface), address)
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
                raw.bind((interface, ETH_P_ARP))
                for _ in range(GARP_COUNT):
                    raw.send(frame)
                    await asyncio.sleep(0.2)
            log.warning("announcing %s from %s (%s)", address, self.node_name, interface)
            await asyncio.Event().wait()
        finally:
            self.held.discard(address)
            with contextlib.suppress(OSError):
                await _ip("addr", "del", f"{address}/32", "dev", interface)

    async def _contend(self, address: str) -> None:
        config = LeaderElectionConfig(name=lease_name(address), namespace=LEASE_NAMESPACE,
                                      identity=self.node_name, lease_duration=LEASE_DURATION,
                                      renew_deadline=RENEW_DEADLINE, retry_period=RETRY_PERIOD)
        elector = LeaderElector(self.client, config)
        while True:
            try:
                await elector.run(lambda: self._hold(address))
            except OSError as e:
                log.error("cannot announce %s: %s", address, e)
                await asyncio.sleep(RETRY_PERIOD)

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
