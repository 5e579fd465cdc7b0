"""An address pool for LoadBalancer Services, as the inventory writes it (`loadbalancer_pool`):
`192.168.1.240-192.168.1.250` (a range, both ends included), `192.168.1.240/29` (a CIDR: its host addresses),
or several of those separated by commas. Pure functions; the service-lb controller allocates from it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_ADDRESSES = 65536  # a homelab pool is small; a typo like /8 should be an error, not a 16M-entry list


class PoolError(ValueError):
    pass


@dataclass(frozen=True)
class AddressPool:
    text: str
    addresses: tuple[ipaddress.IPv4Address, ...]

    def __contains__(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self._set
        except ValueError:
            return False

    @property
    def _set(self) -> frozenset:
        return frozenset(self.addresses)

    def first_free(self, used: set[str]) -> str | None:
        for address in self.addresses:
            if str(address) not in used:
                return str(address)
        return None


def parse_pool(text: str) -> AddressPool:
    found: list[ipaddress.IPv4Address] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                first, last = (ipaddress.IPv4Address(x.strip()) for x in part.split("-", 1))
                if last < first:
                    raise PoolError(f"loadbalancer_pool {part!r}: the range ends before it starts")
                if int(last) - int(first) >= MAX_ADDRESSES:
                    raise PoolError(f"loadbalancer_pool {part!r}: more than {MAX_ADDRESSES} addresses")
                found += [ipaddress.IPv4Address(i) for i in range(int(first), int(last) + 1)]
            else:
                network = ipaddress.IPv4Network(part, strict=True)
                if network.num_addresses > MAX_ADDRESSES:
                    raise PoolError(f"loadbalancer_pool {part!r}: more than {MAX_ADDRESSES} addresses")
                found += list(network) if network.prefixlen >= 31 else list(network.hosts())
        except ValueError as e:
            if isinstance(e, PoolError):
                raise
            raise PoolError(f"loadbalancer_pool {part!r}: {e} (want a range a.b.c.d-a.b.c.e or a CIDR)") from None
    if not found:
        raise PoolError(f"loadbalancer_pool {text!r} holds no address")
    return AddressPool(text, tuple(dict.fromkeys(found)))
