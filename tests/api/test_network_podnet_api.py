"""run_pod_network against a real `kfab server`: Nodes created, moved and deleted through the API become
routes (and their removal) within seconds, in a throwaway network namespace standing in for a host."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from kfab.client import Client, rt_of
from kfab.node.podnet import run_pod_network
from tests.netns import NetNS

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("iptables"),
                                reason="needs unshare, iptables")
NODE = rt_of("Node")


async def wait_routes(ns: NetNS, *want: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while time.monotonic() < deadline:
        got = [" ".join(line.split()) for line in ns.run("ip route show proto 77").stdout.splitlines()]
        if got == list(want):
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"routes are {got!r}, want {want!r}")


async def wait_no_snat_rule(ns: NetNS, timeout: float = 10.0) -> None:
    rule = "-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN"
    deadline = time.monotonic() + timeout
    while rule not in (rules := ns.run("iptables -t nat -S POSTROUTING").stdout):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {rule!r} in POSTROUTING: {rules!r}")
        await asyncio.sleep(0.1)


async def add_node(client: Client, name: str, cidr: str, ip: str) -> None:
    await client.create(NODE, {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
    await client.patch(NODE, None, name, {"status": {"addresses": [{"type": "InternalIP", "address": ip}]}},
                       subresource="status")


def test_routes_follow_nodes_added_moved_and_deleted(kfab_server):
    try:
        ns = NetNS().__enter__()
    except OSError as e:
        pytest.skip(str(e))

    async def scenario():
        async with Client.from_kubeconfig(kfab_server.kubeconfig) as client:
            await add_node(client, "pn-self", "10.244.11.0/24", "10.79.0.11")
            await add_node(client, "pn-a", "10.244.12.0/24", "10.79.0.12")
            task = asyncio.create_task(run_pod_network(client, "pn-self", "10.244.0.0/16", tuple(ns.prefix)))
            try:
                await wait_routes(ns, "10.244.12.0/24 via 10.79.0.12 dev h0")
                await wait_no_snat_rule(ns)   # written after the routes in the same pass
                await add_node(client, "pn-b", "10.244.13.0/24", "10.79.0.13")
                await wait_routes(ns, "10.244.12.0/24 via 10.79.0.12 dev h0", "10.244.13.0/24 via 10.79.0.13 dev h0")
                await client.patch(NODE, None, "pn-a", {"status": {"addresses": [
                    {"type": "InternalIP", "address": "10.79.0.22"}]}}, subresource="status")
                await client.delete(NODE, None, "pn-b")
                await wait_routes(ns, "10.244.12.0/24 via 10.79.0.22 dev h0")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                for name in ("pn-self", "pn-a", "pn-b"):
                    try:
                        await client.delete(NODE, None, name)
                    except Exception:  # noqa: BLE001 - already gone
                        pass

    try:
        setup = ns.run("set -e; ip link add h0 type veth peer name h1; ip link set h0 up; ip link set h1 up; "
                       "ip addr add 10.79.0.11/24 dev h0", check=False)
        if setup.returncode != 0:
            pytest.skip(f"cannot set up a network namespace here: {setup.stderr}")
        asyncio.run(scenario())
    finally:
        ns.__exit__()
