"""Traffic from outside into the whole site (the session's `site`, installed by `kfab up`), checked from this
machine as a browser or dig in the house would: an Ingress host on every worker's port 80 with its pods
balanced, TLS by SNI from a Secret, 404 for unknown hosts; LoadBalancer Services on node addresses and on an
address of the inventory's loadbalancer_pool (TCP and UDP on one port, the way a Pi-hole serves DNS), the pool
address moving to the other worker when its holder's proxy stops; a NetworkPolicy that cuts and restores a
cross-namespace path as a namespace label changes."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import pytest
import yaml
from cryptography import x509

from kfab.pki.ca import issue, new_ca
from tests.lab.node_cluster import build_busybox_image
from tests.lab.test_network_services import client_pod, exec_in, ready_endpoints, web_deployment
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(2400)

NS = "traffic"
WORKERS = ["u2", "u3"]
POOL_TEXT = "10.91.0.240-10.91.0.247"      # tests/lab/inventory/up.yml loadbalancer_pool
POOL = tuple(f"10.91.0.{i}" for i in range(240, 248))


def http_get(ip: str, host: str, port: int = 80, path: str = "/") -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection(ip, port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode(errors="replace").strip()
    finally:
        conn.close()


def https_get(ip: str, host: str) -> tuple[int, str, str]:
    """GET / over TLS with SNI `host`: (status, body, the certificate's subject)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPConnection(ip, 443, timeout=5)
    try:
        conn.sock = ctx.wrap_socket(socket.create_connection((ip, 443), timeout=5), server_hostname=host)
        subject = x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True)).subject.rfc4514_string()
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip(), subject
    finally:
        conn.close()


def quietly(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except OSError:
        return None


@pytest.fixture(scope="module")
def apps(site):
    """Namespace `traffic`: the busybox web Deployment (2 replicas) behind Service web; the image pushed to the
    cluster registry."""
    with tempfile.TemporaryDirectory(prefix="kfab-traffic-") as tmp:
        build_busybox_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), "localhost/kfab-busybox:1", timeout=300)
    assert proc.returncode == 0, proc.stderr
    image = proc.stdout.strip()
    site.kubectl("create", "namespace", NS, check=False)
    web = web_deployment("web", NS, replicas=2)
    web["spec"]["template"]["spec"]["containers"][0]["image"] = image
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
        {"periodSeconds": 3, "failureThreshold": 5, "timeoutSeconds": 10})
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(web))
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
    wait_until("2 ready web endpoints",
               lambda: len(ready_endpoints(site, "web", NS)) == 2, 240, 0.2, retry_on=(Exception,))
    pods = json.loads(site.kubectl("get", "pods", "-n", NS, "-l", "app=web", "-o", "json").stdout)["items"]
    return {"image": image, "names": {p["metadata"]["name"] for p in pods}}


def ingress(name: str, host: str, **spec) -> str:
    return yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": name, "namespace": NS},
                           "spec": {"rules": [{"host": host, "http": {"paths": [{
                               "path": "/", "pathType": "Prefix",
                               "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}], **spec}})


def _backends_seen(site, host: str) -> dict:
    """On a failure: the API's EndpointSlices and pods of Service web next to what `host`'s ingress logged
    (its 503s name the slices its cache held), so the report says which side was wrong."""
    slices = json.loads(site.kubectl("get", "endpointslices", "-n", NS, "-o", "json").stdout)["items"]
    pods = json.loads(site.kubectl("get", "pods", "-n", NS, "-o", "json").stdout)["items"]
    return {"slices": [(s["metadata"]["name"], s["metadata"]["resourceVersion"],
                        [(e["addresses"], e.get("conditions"), (e.get("targetRef") or {}).get("name"))
                         for e in s.get("endpoints") or []]) for s in slices],
            "pods": [(p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("podIP")) for p in pods],
            "ingress log": site.ssh(host, "journalctl -u kfab-ingress -n 20 --no-pager -o cat", check=False).stdout}


def test_an_ingress_host_answers_on_every_worker_with_its_pods_in_turn(site, apps):
    site.kubectl("apply", "-f", "-", input=ingress("web", "web.traffic.test"))
    for host in WORKERS:
        ip = site.lab.hosts[host]
        wait_until(f"web.traffic.test on {host}",
                   lambda ip=ip: (quietly(http_get, ip, "web.traffic.test") or [0])[0]
== 200, 60, 0.2, retry_on=(Exception,))
        seen = {http_get(ip, "web.traffic.test")[2] for _ in range(8)}
        assert seen == apps["names"], (host, seen, _backends_seen(site, host))
        assert http_get(ip, "nobody.traffic.test")[0] == 404
    addresses = wait_until("the Ingress's ADDRESS",
                           lambda: site.kubectl(
"get", "ingress", "web", "-n", NS, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").stdout.split(),
                           60, 0.2, retry_on=(Exception,))
    assert sorted(addresses) == sorted(site.lab.hosts[h] for h in WORKERS)
    assert site.kubectl("get", "ingressclass", "kfab", "-o", "jsonpath={.spec.controller}").stdout == \
        "kfab.io/ingress"


def test_tls_by_sni_from_a_secret_and_a_redirect_from_http(site, apps):
    host = "secure.traffic.test"
    pair = issue(new_ca("lab-ingress"), host, server_names=(host,))
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "secure-tls", "namespace": NS},
        "data": {"tls.crt": base64.b64encode(pair.cert_pem).decode(),
                 "tls.key": base64.b64encode(pair.key_pem).decode()}}))
    site.kubectl("apply", "-f", "-", input=ingress("secure", host, tls=[{"hosts": [host], "secretName": "secure-tls"}]))
    ip = site.lab.hosts["u2"]
    status, body, subject = wait_until("the Secret's certificate by SNI",
                                       lambda: (lambda r: r if r and
    r[2] == f"CN={host}" else None)(quietly(https_get, ip, host)), 60, 0.2, retry_on=(Exception,))
    assert status == 200 and body in apps["names"]
    status, headers, _ = http_get(ip, host, path="/x")
    assert status == 308 and headers["Location"] == f"https://{host}/x"


def _lb_ips(site, name: str, namespace: str = NS) -> list[str]:
    return site.kubectl("get", "svc", name, "-n", namespace, "-o",
                        "jsonpath={.status.loadBalancer.ingress[*].ip}").stdout.split()


def _dns_a(ip: str, port: int, tcp: bool) -> list[str]:
    query = dns.message.make_query("kubernetes.default.svc.cluster.local", "A")
    answer = (dns.query.tcp if tcp else dns.query.udp)(query, ip, port=port, timeout=3)
    return [rr.address for rrset in answer.answer for rr in rrset]


def test_a_load_balancer_on_a_pool_address_answers_tcp_and_udp_on_one_port(site, apps):
    """Cluster DNS for the house on a pool address, port 53, TCP and UDP (as a Pi-hole would be served):
    a LoadBalancer Service in front of the workers' DNS servers (an EndpointSlice of their addresses)."""
    workers = [site.lab.hosts[h] for h in WORKERS]
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "house-dns", "namespace": NS},
         "spec": {"type": "LoadBalancer", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                     {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "house-dns-workers", "namespace": NS,
                      "labels": {"kubernetes.io/service-name": "house-dns"}},
         "addressType": "IPv4", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                          {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in workers]}]))
    [address] = wait_until("a pool address", lambda: _lb_ips(site, "house-dns"), 60, 0.2, retry_on=(Exception,))
    assert address in POOL
    row = site.kubectl("get", "svc", "house-dns", "-n", NS).stdout.splitlines()[1].split()
    assert row[3] == address                                                     # EXTERNAL-IP
    for tcp in (False, True):
        answer = wait_until(f"DNS over {'TCP' if tcp else 'UDP'} at {address}:53",
                            lambda tcp=tcp: quietly(_dns_a, address, 53, tcp), 60, 0.2, retry_on=(Exception,))
        assert answer == ["10.96.0.1"]
    site.kubectl("delete", "svc", "house-dns", "-n", NS)


def _holder(site, address: str) -> str | None:
    for host in WORKERS:
        if f"inet {address}/32" in site.ssh(host, "ip -4 addr show").stdout:
            return host
    return None


def _announcing(site, address: str) -> str:
    """Who announces `address`, as seen from the Lease, each worker and this machine's ARP table (for a failure)."""
    lease = site.kubectl("get", "lease", "-n", "kube-system", "kfab-lb-" + address.replace(".", "-"), "-o",
                         "jsonpath={.spec.holderIdentity} {.spec.renewTime}", check=False)
    on = {h: f"inet {address}/32" in site.ssh(h, "ip -4 addr show", check=False).stdout for h in WORKERS}
    neigh = subprocess.run(["ip", "neigh", "show", address], capture_output=True, text=True).stdout.strip()
    return f"Lease holder/renewed: {lease.stdout or lease.stderr!r}; address on: {on}; this machine: {neigh!r}"


def test_the_pool_address_moves_to_the_other_worker_when_its_holder_stops(site, apps):
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb", "namespace": NS},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    [address] = wait_until("a pool address", lambda: _lb_ips(site, "web-lb"), 60, 0.2, retry_on=(Exception,))

    def answers(what: str):
        try:
            wait_until(what, lambda: (quietly(http_get, address, address) or [0])[0] == 200, 60, 0.2,
                       retry_on=(Exception,))
        except AssertionError as e:
            raise AssertionError(f"{e}; {_announcing(site, address)}") from None
    answers(f"http://{address}/")
    holder = wait_until(f"a worker holding {address}", lambda: _holder(site, address), 30, 0.2, retry_on=(Exception,))
    other = next(h for h in WORKERS if h != holder)
    site.ssh(holder, "systemctl stop kfab-proxy")
    try:
        stopped = time.monotonic()
        try:
            wait_until(f"{address} on {other}", lambda: _holder(site, address) == other, 60, 0.2,
                       retry_on=(Exception,))
        except AssertionError as e:
            raise AssertionError(f"{e}; {_announcing(site, address)}") from None
        answers(f"http://{address}/ through {other}")
        print(f"pool address failover after a clean stop: {time.monotonic() - stopped:.1f}s")
    finally:
        site.ssh(holder, "systemctl start kfab-proxy")
        site.kubectl("delete", "svc", "web-lb", "-n", NS, check=False)


def test_a_load_balancer_without_a_pool_answers_on_the_workers_addresses(site, apps):
    pool = site.kubectl("get", "configmap", "kfab-loadbalancer", "-n", "kube-system", "-o",
                        "jsonpath={.data.pool}").stdout
    assert pool == POOL_TEXT        # written by `kfab up` from the inventory
    site.kubectl("delete", "configmap", "kfab-loadbalancer", "-n", "kube-system")
    try:
        site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-nodes", "namespace": NS},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"port": 8088, "targetPort": 8080}]}}))
        workers = sorted(site.lab.hosts[h] for h in WORKERS)
        wait_until("the workers' addresses",
                   lambda: sorted(_lb_ips(site, "web-nodes")) == workers, 60, 0.2, retry_on=(Exception,))
        for ip in workers:
            assert wait_until(f"{ip}:8088",
                              lambda ip=ip: (quietly(http_get, ip, ip, 8088) or [0, 0, ""])[2],
                              60, 0.2, retry_on=(Exception,)) in apps["names"]
    finally:
        site.kubectl("delete", "svc", "web-nodes", "-n", NS, check=False)
        site.kubectl("create", "configmap", "kfab-loadbalancer", "-n", "kube-system", f"--from-literal=pool={pool}")


def test_a_network_policy_cuts_and_restores_a_cross_namespace_path_as_labels_change(site, apps):
    for ns in ("np-db", "np-web"):
        site.kubectl("create", "namespace", ns, check=False)
    template = web_deployment("db", "np-db")["spec"]["template"]
    server = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "db", "namespace": "np-db", "labels": {"app": "db"}},
              "spec": dict(template["spec"], nodeName="u2")}
    client = client_pod("client", "u3", "np-web")
    for p in (server, client):
        p["spec"]["containers"][0]["image"] = apps["image"]
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([server, client]))

    def running(name: str, ns: str) -> dict | None:
        p = json.loads(site.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)
        return p if p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP") else None
    db = wait_until("the db pod running", lambda: running("db", "np-db"), 240, 0.2,
                    retry_on=(Exception,))["status"]["podIP"]
    pod = wait_until("the client running", lambda: running("client", "np-web"), 240, 0.2, retry_on=(Exception,))

    def reaches() -> bool:
        out = exec_in(site, pod, f"timeout 3 wget -qO- http://{db}:8080/ >/dev/null 2>&1 && echo yes || echo no")
        return out.strip() == "yes"
    wait_until("the path open before any policy", reaches, 60, 0.2, retry_on=(Exception,))
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db", "namespace": "np-db"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                              "ports": [{"port": 8080}]}]}}))
    wait_until("the path cut: np-web has no team=web label", lambda: not reaches(), 30, 0.2, retry_on=(Exception,))
    site.kubectl("label", "namespace", "np-web", "team=web")
    labelled = time.monotonic()
    wait_until("the path restored by the label", reaches, 30, 0.2, retry_on=(Exception,))
    print(f"label -> path open: {time.monotonic() - labelled:.1f}s (incl. a podman exec over SSH)")
    site.kubectl("label", "namespace", "np-web", "team-")
    wait_until("the path cut again without the label", lambda: not reaches(), 30, 0.2, retry_on=(Exception,))
