"""For tests that run inside a private network namespace (`unshare -n`): "hosts" as veth interfaces holding their
own addresses, which of them carry an announced /32 address, and a polling wait. Nothing here may run outside
such a namespace: it changes interfaces."""

from __future__ import annotations

import subprocess
import time


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_hosts(hosts: dict[str, tuple[str, str]]) -> None:
    """Loopback up and, per host, an interface (name -> (link, address/24 network)) that is up."""
    sh("ip", "link", "set", "lo", "up")
    for link, ip in hosts.values():
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", link + "-peer")  # no dummy module here
        sh("ip", "addr", "add", ip + "/24", "dev", link)
        sh("ip", "link", "set", link, "up")
        sh("ip", "link", "set", link + "-peer", "up")


def holders(hosts: dict[str, tuple[str, str]], address: str) -> list[str]:
    """The hosts whose interface carries `address`/32."""
    return [name for name, (link, _) in hosts.items() if f"inet {address}/32" in subprocess.run(
        ["ip", "-4", "addr", "show", "dev", link], capture_output=True, text=True).stdout]


def wait(cond, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out: {cond}")
