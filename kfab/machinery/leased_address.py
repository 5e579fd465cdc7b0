"""A LAN address held by whoever holds a Lease, as kube-vip (the API's virtual IP) and MetalLB's L2 mode (a
LoadBalancer address) do: the holder puts the address on the interface that carries its own address and sends
gratuitous ARP, so the LAN's switches and hosts send that address's traffic to it; it removes the address when it
loses the Lease or stops. When the holder stops renewing (it died, or lost its API), another candidate takes the
Lease after the lease duration and announces the address from its own interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass

from kfab.client import Client
from kfab.machinery.leader import LeaderElectionConfig, LeaderElector

log = logging.getLogger(__name__)

GARP_COUNT = 3
ETH_P_ARP = 0x0806


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float
    renew_deadline: float
    retry_period: float


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
    """The interface that holds `address` (the host's own address on the LAN)."""
    for line in (await _ip("-o", "-4", "addr", "show")).splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == address:
            return fields[1].split("@")[0]
    raise OSError(f"no interface holds {address}")


async def hold_address(address: str, own_address: str, holder: str, held: set[str] | None = None) -> None:
    """Until cancelled: `address` on the interface carrying `own_address`, announced; removed after."""
    interface = await interface_of(own_address)
    await _ip("addr", "replace", f"{address}/32", "dev", interface)
    if held is not None:
        held.add(address)
    try:
        frame = gratuitous_arp(await mac_of(interface), address)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
            raw.bind((interface, ETH_P_ARP))
            for _ in range(GARP_COUNT):
                raw.send(frame)
                await asyncio.sleep(0.2)
        log.warning("announcing %s from %s (%s)", address, holder, interface)
        await asyncio.Event().wait()
    finally:
        if held is not None:
            held.discard(address)
        with contextlib.suppress(OSError):
            await _ip("addr", "del", f"{address}/32", "dev", interface)
        log.warning("%s no longer announces %s", holder, address)


async def contend_for_address(client: Client, address: str, own_address: str, identity: str, lease: str,
                              namespace: str, timing: LeaseTiming, held: set[str] | None = None) -> None:
    """Forever (until cancelled): hold `address` whenever this candidate holds the Lease namespace/lease."""
    config = LeaderElectionConfig(name=lease, namespace=namespace, identity=identity,
                                  lease_duration=timing.lease_duration, renew_deadline=timing.renew_deadline,
                                  retry_period=timing.retry_period)
    elector = LeaderElector(client, config)
    while True:
        try:
            await elector.run(lambda: hold_address(address, own_address, identity, held))
        except OSError as e:
            log.error("cannot announce %s: %s", address, e)
            await asyncio.sleep(timing.retry_period)
