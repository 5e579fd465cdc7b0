"""`kfab ingress` against a real `kfab server`, with its own narrow credentials (user system:kfab-ingress):
Ingresses applied with kubectl route real HTTP(S) requests to stand-in pods on loopback addresses (listed in
EndpointSlices as a pod's IP would be), balanced, with TLS by SNI from Secrets, 404/503/308 as ingress-nginx
answers, WebSocket and streaming pass-through, and status.loadBalancer filled."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time

import aiohttp
import pytest
from cryptography import x509
from kubernetes import client

from kfab.pki.ca import issue, new_ca
from tests.api.conftest import REPO, user_kubeconfig
from tests.api.test_dns_api import stop
from tests.waiting import wait_until

PODS = ("127.0.0.21", "127.0.0.22")


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    """Two stand-in pods on one port of two loopback addresses."""
    port = free_port(PODS[0])
    logs = tmp_path_factory.mktemp("pods")
    procs = [subprocess.Popen([sys.executable, str(REPO / "tests/api/ingress_backend.py"), ip, str(port)],
                              stdout=(logs / f"{ip}.log").open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
             for ip in PODS]
    try:
        for ip in PODS:
            wait_until(f"stand-in pod {ip}:{port}", lambda ip=ip: _connects(ip, port))
        yield port
    finally:
        for proc in procs:
            stop(proc)


def _connects(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def ingress(kfab_server, tmp_path_factory):
    """`kfab ingress` on two free loopback ports: (http port, https port, log path)."""
    out = tmp_path_factory.mktemp("ingress")
    kubeconfig = user_kubeconfig(kfab_server.data_dir, out, "system:kfab-ingress")
    http_port, https_port = free_port(), free_port()
    log = out / "ingress.log"
    proc = subprocess.Popen([sys.executable, "-m", "kfab", "ingress", "--kubeconfig", str(kubeconfig), "--bind",
                             "127.0.0.1", "--http-port", str(http_port), "--https-port", str(https_port), "-v"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    try:
        def listening():
            assert proc.poll() is None, log.read_text()
            return _connects("127.0.0.1", http_port)
        wait_until("kfab ingress to listen", listening)
        yield http_port, https_port, log
    finally:
        stop(proc)


def get(port: int, host: str, path: str = "/", headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def get_tls(port: int, host: str, path: str = "/") -> tuple[int, bytes, dict]:
    """GET over TLS with SNI `host`; also returns the certificate the server presented (decoded, unverified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=host)
        der = conn.sock.getpeercert(binary_form=True)
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read(), _subject(der)
    finally:
        conn.close()


def _subject(der: bytes) -> dict:
    cert = x509.load_der_x509_certificate(der)
    return {"cn": cert.subject.rfc4514_string()}


def setup_backend(kubectl, namespace: str, name: str, port: int, ips=PODS) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{name}-pods", "labels": {"kubernetes.io/service-name": name}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}]}))


def apply_ingress(kubectl, namespace: str, name: str, host: str, service: str, **spec) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": service, "port": {"number": 80}}}}]}}], **spec}}))


def test_the_controller_keeps_its_default_ingress_class(kubectl, ingress):
    out = json.loads(kubectl("get", "ingressclass", "kfab", "-o", "json").stdout)
    assert out["spec"]["controller"] == "kfab.io/ingress"
    assert out["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"


def test_host_routes_to_pods_in_turn_with_forwarded_headers(kubectl, namespace, ingress, pods):
    http_port = ingress[0]
    host = f"web.{namespace}.test"
    setup_backend(kubectl, namespace, "web", pods)
    apply_ingress(kubectl, namespace, "web", host, "web")
    wait_until(f"{host} to answer", lambda: get(http_port, host)[0] == 200)
    seen = set()
    for _ in range(10):
        status, _, body = get(http_port, host, "/hello?x=1", {"X-Forwarded-For": "198.51.100.7"})
        answer = json.loads(body)
        assert status == 200 and answer["path"] == "/hello?x=1"
        assert answer["headers"]["X-Forwarded-For"] == "198.51.100.7, 127.0.0.1"
        assert answer["headers"]["X-Forwarded-Proto"] == "http"
        assert answer["headers"]["X-Forwarded-Host"] == host and answer["headers"]["Host"] == host
        seen.add(answer["pod"])
    assert seen == set(PODS)
    assert get(http_port, f"nobody.{namespace}.test")[0] == 404


def test_backend_without_ready_endpoints_answers_503(kubectl, namespace, ingress, pods):
    http_port = ingress[0]
    host = f"empty.{namespace}.test"
    setup_backend(kubectl, namespace, "empty", pods, ips=())
    apply_ingress(kubectl, namespace, "empty", host, "empty")
    wait_until(f"{host} to answer 503", lambda: get(http_port, host)[0] == 503)
    # ... and says once what its caches held (a 503 in a lab run names the slices it saw)
    get(http_port, host)
    said = [line for line in ingress[2].read_text().splitlines() if f"{namespace}/empty:80: no ready endpoint" in line]
    assert said and "EndpointSlices: empty-pods rv " in said[-1] and " 0/0 ready" in said[-1], said
    assert len(said) == len({line.split(" INFO ", 1)[-1] for line in said}), said    # once per view, not per request


def test_tls_by_sni_from_a_secret_and_http_redirects(kubectl, k8s, namespace, ingress, pods):
    http_port, https_port, _ = ingress
    host, other = f"secure.{namespace}.test", f"plain.{namespace}.test"
    ca = new_ca("tests-ingress")
    pair = issue(ca, host, server_names=(host,))
    client.CoreV1Api(k8s).create_namespaced_secret(namespace, {
        "metadata": {"name": "secure-tls"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(pair.cert_pem).decode(),
                 "tls.key": base64.b64encode(pair.key_pem).decode()}})
    setup_backend(kubectl, namespace, "web", pods)
    apply_ingress(kubectl, namespace, "secure", host, "web", tls=[{"hosts": [host], "secretName": "secure-tls"}])
    apply_ingress(kubectl, namespace, "plain", other, "web")
    wait_until(f"{host}'s certificate by SNI", lambda: get_tls(https_port, host)[2]["cn"] == f"CN={host}")
    status, body, _ = get_tls(https_port, host, "/x")
    assert status == 200 and json.loads(body)["headers"]["X-Forwarded-Proto"] == "https"
    # A host without TLS gets the default certificate on :443, and no redirect on :80.
    assert get_tls(https_port, other)[2]["cn"] == "CN=Kubernetes Ingress Controller Fake Certificate"
    assert get(http_port, other)[0] == 200
    status, headers, _ = get(http_port, host, "/x?y=1")
    assert status == 308 and headers["Location"] == f"https://{host}/x?y=1"


def test_missing_tls_secret_is_an_event_and_the_default_certificate(kubectl, namespace, ingress, pods):
    https_port = ingress[1]
    host = f"broken.{namespace}.test"
    setup_backend(kubectl, namespace, "web", pods)
    apply_ingress(kubectl, namespace, "broken", host, "web", tls=[{"hosts": [host], "secretName": "nowhere"}])

    def warned():
        events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        return [e for e in events if e["involvedObject"].get("name") == "broken" and e["reason"] == "InvalidTLSSecret"]
    event = wait_until("an InvalidTLSSecret event", warned)[0]
    assert f'secret "{namespace}/nowhere" not found' in event["message"] and event["type"] == "Warning"
    assert "InvalidTLSSecret" in kubectl("describe", "ingress", "broken", "-n", namespace).stdout
    status, _, cert = get_tls(https_port, host)
    assert status == 200 and cert["cn"] == "CN=Kubernetes Ingress Controller Fake Certificate"


def tls_secret(name: str, cert_pem: bytes, key_pem: bytes) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name},
                       "data": {"tls.crt": base64.b64encode(cert_pem).decode(),
                                "tls.key": base64.b64encode(key_pem).decode()}})


def test_a_malformed_tls_secret_is_an_event_other_hosts_keep_their_certificates_and_a_fix_is_served(
        kubectl, namespace, ingress, pods):
    https_port = ingress[1]
    bad, good = f"bad.{namespace}.test", f"good.{namespace}.test"
    ca = new_ca("tests-ingress")
    good_pair, bad_pair = issue(ca, good, server_names=(good,)), issue(ca, bad, server_names=(bad,))
    setup_backend(kubectl, namespace, "web", pods)
    kubectl("apply", "-n", namespace, "-f", "-", input=tls_secret("good-tls", good_pair.cert_pem, good_pair.key_pem))
    # A certificate that is not PEM, and a key of another certificate: neither loads.
    kubectl("apply", "-n", namespace, "-f", "-", input=tls_secret("bad-tls", b"not a certificate", bad_pair.key_pem))
    apply_ingress(kubectl, namespace, "good", good, "web", tls=[{"hosts": [good], "secretName": "good-tls"}])
    apply_ingress(kubectl, namespace, "bad", bad, "web", tls=[{"hosts": [bad], "secretName": "bad-tls"}])

    def warned():
        events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        return [e for e in events if e["involvedObject"].get("name") == "bad" and e["reason"] == "InvalidTLSSecret"]
    event = wait_until("an InvalidTLSSecret event", warned)[0]
    assert event["type"] == "Warning" and f'secret "{namespace}/bad-tls"' in event["message"]
    assert "do not load as a certificate and its key" in event["message"], event["message"]
    described = kubectl("describe", "ingress", "bad", "-n", namespace).stdout
    assert "InvalidTLSSecret" in described and "serving the default certificate" in described
    assert get_tls(https_port, bad)[2]["cn"] == "CN=Kubernetes Ingress Controller Fake Certificate"
    # Nothing else disturbed: the other host keeps its own certificate and serves.
    status, _, cert = get_tls(https_port, good)
    assert status == 200 and cert["cn"] == f"CN={good}"
    assert not [e for e in json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
                if e["involvedObject"].get("name") == "good" and e["type"] == "Warning"]
    # The Secret fixed: its certificate is served without touching the Ingress.
    kubectl("apply", "-n", namespace, "-f", "-", input=tls_secret("bad-tls", bad_pair.cert_pem, bad_pair.key_pem))
    wait_until(f"{bad}'s own certificate once its Secret is fixed",
               lambda: get_tls(https_port, bad)[2]["cn"] == f"CN={bad}")


def test_websocket_and_streaming_pass_through(kubectl, namespace, ingress, pods):
    http_port = ingress[0]
    host = f"live.{namespace}.test"
    setup_backend(kubectl, namespace, "live", pods, ips=PODS[:1])
    apply_ingress(kubectl, namespace, "live", host, "live")
    wait_until(f"{host} to answer", lambda: get(http_port, host)[0] == 200)

    async def talk():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{http_port}/ws", headers={"Host": host}) as ws:
                await ws.send_str("ping")
                echoed = (await ws.receive(timeout=5)).data
            started, arrivals = time.monotonic(), []
            async with session.get(f"http://127.0.0.1:{http_port}/stream", headers={"Host": host}) as resp:
                async for chunk in resp.content.iter_any():
                    arrivals.append((time.monotonic() - started, chunk))
            return echoed, arrivals

    echoed, arrivals = asyncio.run(talk())
    assert echoed == f"{PODS[0]}:ping"
    assert b"".join(c for _, c in arrivals) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert arrivals[0][0] < 0.25, "the first event must arrive before the stream ends (no buffering)"


def test_changes_keep_open_connections_and_status_lists_node_addresses(kubectl, k8s, namespace, ingress, pods):
    http_port = ingress[0]
    host = f"keep.{namespace}.test"
    node = f"ingress-{namespace}"
    core = client.CoreV1Api(k8s)
    core.create_node({"metadata": {"name": node}})
    try:
        core.patch_node_status(node, {"status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.44"}],
                                                 "conditions": [{"type": "Ready", "status": "True"}]}})
        setup_backend(kubectl, namespace, "web", pods)
        apply_ingress(kubectl, namespace, "keep", host, "web")
        wait_until(f"{host} to answer", lambda: get(http_port, host)[0] == 200)
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("GET", "/", headers={"Host": host})
        first = conn.getresponse()
        first.read()
        apply_ingress(kubectl, namespace, "other", f"other.{namespace}.test", "web")
        wait_until("the new Ingress to answer", lambda: get(http_port, f"other.{namespace}.test")[0] == 200)
        conn.request("GET", "/again", headers={"Host": host})  # the same keep-alive connection
        assert conn.getresponse().status == 200
        conn.close()
        net = client.NetworkingV1Api(k8s)
        addresses = wait_until("status.loadBalancer",
                               lambda: net.read_namespaced_ingress("keep", namespace).status.load_balancer.ingress)
        assert "192.0.2.44" in [a.ip for a in addresses]
    finally:
        core.delete_node(node)


def test_an_overlapping_host_and_path_is_an_event_on_the_newer_ingress_and_the_older_keeps_serving(
        kubectl, namespace, ingress, pods):
    http_port = ingress[0]
    host = f"shared.{namespace}.test"
    setup_backend(kubectl, namespace, "first", pods, ips=PODS[:1])
    setup_backend(kubectl, namespace, "second", pods, ips=PODS[1:])
    apply_ingress(kubectl, namespace, "first", host, "first")
    wait_until(f"{host} to answer", lambda: get(http_port, host)[0] == 200)
    apply_ingress(kubectl, namespace, "second", host, "second")

    def warned():
        events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        return [e for e in events if e["involvedObject"].get("name") == "second" and e["reason"] == "Conflict"]
    event = wait_until("a Conflict event on the newer Ingress", warned)[0]
    assert f"already defined in ingress {namespace}/first" in event["message"]
    assert "Conflict" in kubectl("describe", "ingress", "second", "-n", namespace).stdout
    assert {json.loads(get(http_port, host)[2])["pod"] for _ in range(4)} == {PODS[0]}
