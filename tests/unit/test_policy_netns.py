"""The NetworkPolicy table does what it says in a real kernel: three pods on one bridge (each its own network
namespace, inside a private `unshare -n -m`, nothing of this machine's network touched), br_netfilter on as
role common sets it, and the proxy's ClusterIP table; a policy lets the `web` namespace reach the database port and
nobody else — straight and through the Service — a running connection survives the policy (as CNIs keep
established flows), new ones from elsewhere are dropped."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from kfab.proxy.policy_rules import build_policy_rules
from kfab.proxy.rules import render_ruleset

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs unshare, nft, ip")

# An echo server on the database pod's ports 5432 and 8080.
SERVER = textwrap.dedent("""
    import socket, threading
    def serve(port):
        s = socket.create_server(("10.244.1.5", port))
        while True:
            c, _ = s.accept()
            threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(100), b"")],
                             daemon=True).start()
    for p in (5432, 8080):
        threading.Thread(target=serve, args=(p,), daemon=True).start()
    threading.Event().wait()
""")

# One connection kept open; each line on stdin sends a byte and says whether the echo came back.
KEEPER = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection(("10.244.1.5", 8080), timeout=5)
    for line in sys.stdin:
        s.sendall(b"y")
        print(s.recv(10).decode() == "y", flush=True)
""")

INSIDE = textwrap.dedent("""
    import json, socket, subprocess, sys, time
    before_policy, ruleset, service_table = json.loads(sys.stdin.read())
    sh = lambda *a: subprocess.run(a, check=True)
    sh("mount", "-t", "tmpfs", "none", "/run")
    sh("mkdir", "-p", "/run/netns")
    sh("ip", "link", "add", "br0", "type", "bridge"); sh("ip", "addr", "add", "10.244.1.1/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    for n in ("5", "6", "7"):
        sh("ip", "netns", "add", "p" + n)
        sh("ip", "link", "add", "v" + n, "type", "veth", "peer", "name", "e" + n)
        sh("ip", "link", "set", "e" + n, "netns", "p" + n)
        sh("ip", "link", "set", "v" + n, "master", "br0", "up")
        sh("ip", "-n", "p" + n, "addr", "add", f"10.244.1.{n}/24", "dev", "e" + n)
        sh("ip", "-n", "p" + n, "link", "set", "e" + n, "up")
        sh("ip", "-n", "p" + n, "route", "add", "default", "via", "10.244.1.1")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
    subprocess.run(["nft", "-f", "-"], input=service_table.encode(), check=True)  # the proxy's ClusterIP rules
    open("/proc/sys/net/bridge/bridge-nf-call-iptables", "w").write("1")
    subprocess.run(["nft", "-f", "-"], input=before_policy.encode(), check=True)  # the table as the proxy starts it
    server = subprocess.Popen(["ip", "netns", "exec", "p5", sys.executable, "-c", sys.argv[1]])
    def connect(src, port, ip="10.244.1.5"):
        code = f"import socket; s = socket.socket(); s.settimeout(2); s.connect(('{ip}', {port})); " \\
               "s.sendall(b'x'); print(s.recv(10).decode())"
        r = subprocess.run(["ip", "netns", "exec", src, sys.executable, "-c", code], capture_output=True, text=True)
        return "open" if r.stdout.strip() == "x" else "blocked"
    for _ in range(50):
        if connect("p6", 5432) == "open":
            break
        time.sleep(0.1)
    # A connection from p7 running before the policy: kept open by a helper process in p7.
    keeper = subprocess.Popen(["ip", "netns", "exec", "p7", sys.executable, "-c", sys.argv[2]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    keeper.stdin.write("go\\n"); keeper.stdin.flush(); before = keeper.stdout.readline().strip()
    subprocess.run(["nft", "-f", "-"], input=ruleset.encode(), check=True)
    out = {"established_before": before,
           "web_to_db": connect("p6", 5432), "web_to_other_port": connect("p6", 8080),
           "other_ns_to_db": connect("p7", 5432),
           "web_via_service": connect("p6", 5432, "10.96.0.50"), "other_ns_via_service": connect("p7", 5432,
                                                                                               "10.96.0.50")}
    keeper.stdin.write("go\\n"); keeper.stdin.flush(); out["established_after"] = keeper.stdout.readline().strip()
    keeper.kill(); server.kill()
    print(json.dumps(out))
""")


def test_policy_lets_the_allowed_namespace_in_keeps_running_connections_and_drops_the_rest():
    pods = [{"metadata": {"namespace": "db", "name": "pg", "labels": {"app": "pg"}},
             "spec": {"nodeName": "w1"}, "status": {"podIP": "10.244.1.5"}},
            {"metadata": {"namespace": "web", "name": "fe", "labels": {"app": "fe"}},
             "spec": {"nodeName": "w1"}, "status": {"podIP": "10.244.1.6"}},
            {"metadata": {"namespace": "other", "name": "x", "labels": {"app": "fe"}},
             "spec": {"nodeName": "w1"}, "status": {"podIP": "10.244.1.7"}}]
    namespaces = [{"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
                  for n in ("db", "web", "other")]
    policy = {"metadata": {"namespace": "db", "name": "pg"}, "spec": {
        "podSelector": {"matchLabels": {"app": "pg"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}}],
                     "ports": [{"port": 5432, "protocol": "TCP"}]}]}}
    rulesets = [build_policy_rules(policies, pods, namespaces, "w1").text() for policies in ([], [policy])]
    db_service = {"metadata": {"namespace": "db", "name": "pg"},
                  "spec": {"clusterIP": "10.96.0.50", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}
    db_slice = {"metadata": {"namespace": "db", "name": "pg-1", "labels": {"kubernetes.io/service-name": "pg"}},
                "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}]}
    rulesets.append(render_ruleset([db_service], [db_slice], [], cluster_cidr="10.244.0.0/16"))
    done = subprocess.run(["unshare", "-n", "-m", "--propagation", "private", sys.executable, "-c", INSIDE,
                           SERVER, KEEPER],
                          input=json.dumps(rulesets), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"established_before": "True", "web_to_db": "open", "web_to_other_port": "blocked",
                   "other_ns_to_db": "blocked", "established_after": "True",
                   "web_via_service": "open", "other_ns_via_service": "blocked"}
