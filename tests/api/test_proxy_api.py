"""`kfab proxy` against a real `kfab server`, programming a real nftables table in a network namespace of
its own (`unshare -n`; `--nft-command "nsenter -t PID -n nft"`), so this machine's own rules are never
touched: Services and EndpointSlices created with kubectl become DNAT rules within a second or so, an
endpoint turning unready leaves the rules, a Service left with no ready endpoint is rejected."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.api.conftest import REPO
from tests.api.test_dns_api import stop
from tests.netns import NetNS
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("nft"), reason="needs unshare, nft")


@pytest.fixture(scope="module")
def netns():
    try:
        ns = NetNS().__enter__()
    except OSError as e:
        pytest.skip(str(e))
    try:
        if ns.run("nft list tables", check=False).returncode != 0:
            pytest.skip("cannot run nft in a network namespace here")
        yield ns.prefix
    finally:
        ns.__exit__()


@pytest.fixture(scope="module")
def proxy(kfab_server, netns, tmp_path_factory):
    work = tmp_path_factory.mktemp("proxy")
    kubeconfig = work / "proxy.kubeconfig"
    subprocess.run([sys.executable, "-m", "kfab", "kubeconfig", "--data-dir", str(kfab_server.data_dir),
                    "--user", "system:kube-proxy", "-o", str(kubeconfig)], check=True, capture_output=True, cwd=REPO)
    log = work / "proxy.log"
    proc = subprocess.Popen([sys.executable, "-m", "kfab", "proxy", "--kubeconfig", str(kubeconfig),
                             "--node-ip", "10.79.0.11", "--nft-command", " ".join([*netns, "nft"]), "-v"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    try:
        wait_until("the proxy's first table",
                   lambda: table(netns) or proc.poll() is not None, 20.0, retry_on=(Exception,))
        assert proc.poll() is None, log.read_text()
        yield netns
    finally:
        stop(proc)


def table(netns) -> str:
    out = subprocess.run([*netns, "nft", "list", "table", "ip", "kfab"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else ""


MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-manual
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.1.5], conditions: {ready: true}}
- {addresses: [10.244.2.5], conditions: {ready: %s}}
"""


def test_endpoint_changes_reach_the_nftables_rules(kubectl, namespace, proxy):
    kubectl("apply", "-n", namespace, "-f", "-", input=MANIFEST % "true")
    ip = kubectl("get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    node_port = kubectl("get", "service", "web", "-n", namespace,
                        "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
    chain = f"svc-{namespace}-web-tcp-80"
    wait_until("both endpoints in the rules", lambda: "10.244.2.5 . 8080" in table(proxy), 20.0, retry_on=(Exception,))
    rules = table(proxy)
    assert f"{ip} . tcp . 80 : goto {chain}" in rules
    assert f"tcp . {node_port} : goto {chain}" in rules
    assert "numgen random mod 2 map { 0 : 10.244.1.5 . 8080, 1 : 10.244.2.5 . 8080 }" in rules
    assert "numgen random mod 2 map { 0 : 10.244.1.5 . 5353, 1 : 10.244.2.5 . 5353 }" in rules

    # The second endpoint fails its readiness: out of the rules.
    kubectl("apply", "-n", namespace, "-f", "-", input=MANIFEST % "false")
    wait_until("the unready endpoint to leave the rules",
               lambda: "10.244.2.5" not in table(proxy), 20.0, retry_on=(Exception,))
    assert "to 10.244.1.5:8080" in table(proxy)

    # No ready endpoint left: the Service is rejected instead of DNATed.
    kubectl("patch", "endpointslice", "web-manual", "-n", namespace, "--type=json",
            "-p", '[{"op": "replace", "path": "/endpoints/0/conditions/ready", "value": false}]')
    wait_until("the Service to be rejected",
               lambda: f"{ip} . tcp . 80" in _set(table(proxy), "no-endpoint-services"), 20.0, retry_on=(Exception,))
    assert "8080" not in table(proxy)
    assert f"tcp . {node_port}" in _set(table(proxy), "no-endpoint-nodeports")

    kubectl("delete", "service", "web", "-n", namespace)
    wait_until("the deleted Service to leave the rules", lambda: ip not in table(proxy), 20.0, retry_on=(Exception,))


def _set(rules: str, name: str) -> str:
    start = rules.find(f"set {name} {{")
    return rules[start:rules.find("}", start)] if start >= 0 else ""
