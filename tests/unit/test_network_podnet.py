"""Pod network routes (host-gw): which routes a node wants, and HostRoutes making them true in a real
network namespace (`unshare -n`, so this machine's own routes are never touched)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from kfab.node.podnet import HostRoutes, desired_routes
from tests.netns import NetNS


def node(name, cidr, ip):
    n = {"metadata": {"name": name}, "spec": {}, "status": {"addresses": [{"type": "Hostname", "address": name}]}}
    if cidr:
        n["spec"]["podCIDR"] = cidr
    if ip:
        n["status"]["addresses"].append({"type": "InternalIP", "address": ip})
    return n


def test_routes_to_every_other_node_with_a_pod_cidr_and_an_address():
    nodes = [node("kt1", "10.244.1.0/24", "10.79.0.11"), node("kt2", "10.244.2.0/24", "10.79.0.12"),
             node("kt3", "10.244.3.0/24", "10.79.0.13"), node("new", None, "10.79.0.14"),
             node("noaddr", "10.244.5.0/24", None), node("bad", "not-a-cidr", "10.79.0.16")]
    assert desired_routes(nodes, "kt1") == {"10.244.2.0/24": "10.79.0.12", "10.244.3.0/24": "10.79.0.13"}


@pytest.fixture
def netns():
    if not shutil.which("unshare") or not shutil.which("iptables"):
        pytest.skip("needs unshare and iptables")
    try:
        ns = NetNS().__enter__()
    except OSError as e:
        pytest.skip(str(e))
    try:
        setup = ns.run("set -e; ip link add h0 type veth peer name h1; ip link set h0 up; "
                       "ip link set h1 up; ip addr add 10.79.0.11/24 dev h0", check=False)
        if setup.returncode != 0:
            pytest.skip(f"cannot set up a network namespace here: {setup.stderr}")
        yield tuple(ns.prefix)
    finally:
        ns.__exit__()


def ns(prefix, cmd):
    return subprocess.run([*prefix, "sh", "-c", cmd], capture_output=True, text=True, check=True).stdout


def test_routes_follow_the_nodes_and_pod_traffic_is_not_snated(netns):
    host = HostRoutes("10.244.0.0/16", netns)
    changes = asyncio.run(host.apply({"10.244.2.0/24": "10.79.0.12", "10.244.3.0/24": "10.79.0.13"}))
    assert changes == ["10.244.2.0/24 via 10.79.0.12", "10.244.3.0/24 via 10.79.0.13"]
    routes = ns(netns, "ip route show proto 77")
    assert "10.244.2.0/24 via 10.79.0.12 dev h0" in routes and "10.244.3.0/24 via 10.79.0.13 dev h0" in routes
    # Re-applying the same routes changes nothing and never adds the no-SNAT rule twice.
    assert asyncio.run(host.apply({"10.244.2.0/24": "10.79.0.12", "10.244.3.0/24": "10.79.0.13"})) == []
    rules = ns(netns, "iptables -t nat -S POSTROUTING")
    assert rules.count("-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN") == 1
    # kt3 deleted, kt2 moved to a new address.
    changes = asyncio.run(host.apply({"10.244.2.0/24": "10.79.0.22"}))
    assert changes == ["10.244.2.0/24 via 10.79.0.22", "removed 10.244.3.0/24"]
    assert ns(netns, "ip route show proto 77").strip() == "10.244.2.0/24 via 10.79.0.22 dev h0"


def test_routes_lost_with_a_restart_are_written_again(netns):
    host = HostRoutes("10.244.0.0/16", netns)
    asyncio.run(host.apply({"10.244.2.0/24": "10.79.0.12"}))
    ns(netns, "ip route flush proto 77; iptables -t nat -F POSTROUTING")
    assert asyncio.run(host.apply({"10.244.2.0/24": "10.79.0.12"})) == ["10.244.2.0/24 via 10.79.0.12"]
    assert "-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN" in ns(netns, "iptables -t nat -S POSTROUTING")
