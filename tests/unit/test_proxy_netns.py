"""The rendered table does what it says in a real kernel: applied with nft in a fresh network namespace
(`unshare -n`, nothing on this machine's own network is touched), a client reaches every ready endpoint
through the ClusterIP, TCP and UDP, and a Service without endpoints is refused at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from kfab.proxy.rules import render_ruleset

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("nft"), reason="needs unshare, nft")

# Runs inside the namespace: loopback holds the "pod" addresses, servers answer with their own address.
INSIDE = textwrap.dedent("""
    import json, socket, subprocess, sys, threading
    ruleset = sys.stdin.read()
    sh = lambda *a: subprocess.run(a, check=True)
    sh("ip", "link", "set", "lo", "up")
    for ip in ("10.244.1.5", "10.244.1.6", "10.244.1.7"):
        sh("ip", "addr", "add", ip + "/32", "dev", "lo")
    sh("ip", "route", "add", "10.96.0.0/12", "dev", "lo")
    subprocess.run(["nft", "-f", "-"], input=ruleset.encode(), check=True)
    def tcp_server(ip):
        s = socket.create_server((ip, 8080))
        def serve():
            while True:
                c, _ = s.accept(); c.sendall(ip.encode()); c.close()
        threading.Thread(target=serve, daemon=True).start()
    def udp_server(ip):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((ip, 5353))
        def serve():
            while True:
                _, peer = s.recvfrom(100); s.sendto(ip.encode(), peer)
        threading.Thread(target=serve, daemon=True).start()
    for ip in ("10.244.1.5", "10.244.1.6", "10.244.1.7"):
        tcp_server(ip); udp_server(ip)
    out = {"tcp": [], "udp": [], "empty_tcp": None, "empty_udp": None}
    for _ in range(60):
        with socket.create_connection(("10.96.0.20", 80), timeout=5) as c:
            out["tcp"].append(c.recv(100).decode())
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
        u.connect(("10.96.0.20", 53)); u.send(b"q"); out["udp"].append(u.recv(100).decode()); u.close()
    try:
        socket.create_connection(("10.96.0.21", 80), timeout=5)
        out["empty_tcp"] = "connected"
    except ConnectionRefusedError:
        out["empty_tcp"] = "refused"
    except OSError as e:
        out["empty_tcp"] = repr(e)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
    try:
        u.connect(("10.96.0.21", 53)); u.send(b"q"); u.recv(100); out["empty_udp"] = "answered"
    except ConnectionRefusedError:
        out["empty_udp"] = "refused"
    except PermissionError:
        # The reject runs in the sender's own OUTPUT hook: the kernel fails send() at once (a forwarded
        # packet from a pod gets the ICMP port-unreachable instead).
        out["empty_udp"] = "refused"
    except OSError as e:
        out["empty_udp"] = repr(e)
    print(json.dumps(out))
""")


def test_cluster_ip_balances_over_ready_endpoints_and_rejects_when_none():
    web = {"metadata": {"namespace": "default", "name": "web"},
           "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                                         {"name": "dns", "port": 53, "protocol": "UDP"}]}}
    empty = {"metadata": {"namespace": "default", "name": "empty"},
             "spec": {"clusterIP": "10.96.0.21", "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                                           {"name": "dns", "port": 53, "protocol": "UDP"}]}}
    slices = [{"metadata": {"namespace": "default", "name": "web-1",
                            "labels": {"kubernetes.io/service-name": "web"}},
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                         {"name": "dns", "port": 5353, "protocol": "UDP"}],
               "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.1.6"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.1.7"], "conditions": {"ready": False}}]}]
    ruleset = render_ruleset([web, empty], slices, [], cluster_cidr="10.244.0.0/16")
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", INSIDE], input=ruleset, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"no permission to create a network namespace: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["tcp"]) == {"10.244.1.5", "10.244.1.6"}   # both ready ones, never the unready one
    assert set(out["udp"]) == {"10.244.1.5", "10.244.1.6"}
    assert out["empty_tcp"] == "refused"
    assert out["empty_udp"] == "refused"
