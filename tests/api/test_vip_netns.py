"""`kfab vip` (the API's virtual IP) with real Leases and real interfaces: inside a private network namespace
(`unshare -n`, nothing of this machine's network touched), a `kfab server` and two control-plane "hosts", each
a `kfab vip` process as user system:kfab-vip with an interface holding its own address. One holds the VIP and
the Lease; killed with SIGKILL (the host died: its address goes with it), the other takes over once the Lease
expires; stopped cleanly (SIGTERM), a holder removes the address and releases the Lease at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.api.conftest import REPO

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("ip"), reason="needs unshare, ip")

INSIDE = textwrap.dedent("""
    import asyncio, json, signal, subprocess, sys, tempfile, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.api.conftest import start_server, stop_server, user_kubeconfig
    from kfab.client import Client, rt_of
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True)
    sh("ip", "link", "set", "lo", "up")
    hosts = {"cp-a": ("h1", "10.98.0.11"), "cp-b": ("h2", "10.98.0.12")}
    for link, ip in hosts.values():
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", link + "-peer")
        sh("ip", "addr", "add", ip + "/24", "dev", link)
        sh("ip", "link", "set", link, "up"); sh("ip", "link", "set", link + "-peer", "up")
    VIP = "10.98.0.100"
    def holders():
        return [name for name, (link, _) in hosts.items() if f"inet {VIP}/32" in subprocess.run(
            ["ip", "-4", "addr", "show", "dev", link], capture_output=True, text=True).stdout]
    def wait(cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = cond()
            if value:
                return value
            time.sleep(0.05)
        raise SystemExit(f"timed out: {cond}; holders {holders()}")
    data = Path(tempfile.mkdtemp())
    server_proc, server = start_server(data, "--disable-controllers")
    vip_kubeconfig = user_kubeconfig(data, data, "system:kfab-vip")
    procs = {}
    def start(name):
        procs[name] = subprocess.Popen([sys.executable, "-m", "kfab", "vip", VIP, "--kubeconfig",
                                        str(vip_kubeconfig), "--own-address", hosts[name][1], "--identity", name])
    async def lease_holder():
        async with Client.from_kubeconfig(server.kubeconfig) as client:
            lease = await client.get(rt_of("Lease", "coordination.k8s.io/v1"), "kube-system", "kfab-control-plane-vip")
            return lease["spec"]["holderIdentity"]
    try:
        for name in hosts:
            start(name)
        first = wait(lambda: len(holders()) == 1 and holders()[0], 30)
        other = next(n for n in hosts if n != first)
        result = {"first": first, "lease_first": asyncio.run(lease_holder())}
        procs[first].send_signal(signal.SIGKILL); procs[first].wait()
        killed = time.monotonic()
        sh("ip", "addr", "del", VIP + "/32", "dev", hosts[first][0])  # the dead host's address goes with it
        wait(lambda: holders() == [other], 30)
        result.update(then=other, lease_then=asyncio.run(lease_holder()), killed_s=round(time.monotonic() - killed, 2))
        start(first)
        time.sleep(6)  # its Python start-up (seconds on a loaded machine), then a first look at the Lease
        procs[other].send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert procs[other].wait(timeout=20) == 0
        wait(lambda: holders() == [first], 30)
        result.update(back=first, stopped_s=round(time.monotonic() - stopped, 2))
        print(json.dumps(result))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate(); p.wait()
        stop_server(server_proc)
""")


def test_the_vip_moves_to_the_other_host_when_its_holder_dies_or_stops():
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", INSIDE, str(REPO)],
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["lease_first"] == result["first"] and result["lease_then"] == result["then"] != result["first"]
    assert result["back"] == result["first"]
    assert result["killed_s"] < 7, result    # Lease of 4 s + a retry period of 0.5 s, and the address added
    assert result["stopped_s"] < 3, result   # released on a clean stop: the next retry takes it
    print(f"VIP failover: holder killed {result['killed_s']} s, holder stopped {result['stopped_s']} s")
