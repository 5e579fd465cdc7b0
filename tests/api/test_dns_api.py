"""`kfab dns` against a real `kfab server`: Services created with kubectl become DNS answers (queried with
dnspython over UDP and TCP, as dig would), deletions become NXDOMAIN, other names go to the upstream — here
a second `kfab dns` serving another domain, so the forwarded answer is checked end to end."""

from __future__ import annotations

import socket
import subprocess
import sys

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.api.conftest import REPO
from tests.waiting import wait_until

DEADLINE = 20.0


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def wait_for(what, check, timeout=DEADLINE):
    """tests.waiting.wait_until, errors counting as "not yet" (new tests: call wait_until)."""
    return wait_until(what, check, timeout, retry_on=(Exception,))


def query(port, name, rdtype="A", tcp=False):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3, raise_on_truncation=False)


def addresses(response):
    return sorted(rr.address for rrset in response.answer for rr in rrset if hasattr(rr, "address"))


@pytest.fixture(scope="module")
def dns_credentials(kfab_server, tmp_path_factory):
    """A kubeconfig with only the proxy's read rights (system:node-proxier), not admin."""
    path = tmp_path_factory.mktemp("dns") / "dns.kubeconfig"
    subprocess.run([sys.executable, "-m", "kfab", "kubeconfig", "--data-dir", str(kfab_server.data_dir),
                    "--user", "system:kube-proxy", "-o", str(path)], check=True, capture_output=True, cwd=REPO)
    return path


def start_dns(kubeconfig, port, *extra, log):
    return subprocess.Popen([sys.executable, "-m", "kfab", "dns", "--kubeconfig", str(kubeconfig),
                             "--listen", f"127.0.0.1:{port}", *extra],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_answering_dns(credentials, zone: str, *extra, log) -> tuple[subprocess.Popen, int]:
    """`kfab dns` on a free port, answering for `zone`. A port found free can be taken before kfab dns binds it
    (other test processes' connections get ports from the same range): then again on another port."""
    for _ in range(5):
        port = free_port()
        proc = start_dns(credentials, port, *extra, log=log)

        def answering():
            if proc.poll() is not None:
                return "exited"
            return query(port, zone, "SOA").rcode() == dns.rcode.NOERROR
        if wait_for("kfab dns to answer", answering) is True:
            return proc, port
        if "address already in use" not in log.read_text().lower():
            raise AssertionError(f"kfab dns exited:\n{log.read_text()}")
    raise AssertionError(f"kfab dns found no free port in 5 tries:\n{log.read_text()}")


@pytest.fixture(scope="module")
def dns_servers(dns_credentials, tmp_path_factory):
    logs = tmp_path_factory.mktemp("dns-logs")
    upstream, up_port = start_answering_dns(dns_credentials, "example.test", "--domain", "example.test",
                                            "--upstream", "127.0.0.1:9", log=logs / "upstream.log")
    try:
        server, port = start_answering_dns(dns_credentials, "cluster.local", "--upstream", f"127.0.0.1:{up_port}",
                                           log=logs / "dns.log")
        try:
            yield port
        finally:
            stop(server)
    finally:
        stop(upstream)


SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-manual
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: pg, port: 5432, protocol: TCP}]
endpoints:
- {addresses: [10.244.1.5], hostname: db-0, conditions: {ready: true}}
- {addresses: [10.244.2.5], hostname: db-1, conditions: {ready: true}}
- {addresses: [10.244.2.9], hostname: db-2, conditions: {ready: false}}
"""


def test_services_created_with_kubectl_resolve(kubectl, namespace, dns_servers):
    port = dns_servers
    kubectl("apply", "-n", namespace, "-f", "-", input=SERVICES)
    cluster_ip = kubectl("get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    name = f"web.{namespace}.svc.cluster.local"
    wait_for(f"{name} -> {cluster_ip}", lambda: addresses(query(port, name)) == [cluster_ip])
    assert addresses(query(port, name, tcp=True)) == [cluster_ip]
    srv = query(port, f"_http._tcp.{name}", "SRV")
    assert [(rr.port, rr.target.to_text()) for rr in srv.answer[0]] == [(80, name + ".")]

    db = f"db.{namespace}.svc.cluster.local"
    wait_for("headless db -> ready pod IPs", lambda: addresses(query(port, db)) == ["10.244.1.5", "10.244.2.5"])
    assert addresses(query(port, f"db-1.{db}")) == ["10.244.2.5"]
    assert query(port, f"db-2.{db}").rcode() == dns.rcode.NXDOMAIN      # not ready


def test_a_deleted_service_becomes_nxdomain(kubectl, namespace, dns_servers):
    port = dns_servers
    kubectl("create", "service", "clusterip", "gone", "--tcp=80:80", "-n", namespace)
    name = f"gone.{namespace}.svc.cluster.local"
    wait_for(f"{name} to resolve", lambda: addresses(query(port, name)))
    kubectl("delete", "service", "gone", "-n", namespace)
    wait_for(f"{name} to be NXDOMAIN", lambda: query(port, name).rcode() == dns.rcode.NXDOMAIN)


def test_names_outside_the_cluster_domain_are_forwarded(kubectl, namespace, dns_servers):
    port = dns_servers
    kubectl("create", "service", "clusterip", "www", "--tcp=80:80", "-n", namespace)
    cluster_ip = kubectl("get", "service", "www", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    # Only the upstream (domain example.test) knows this name; the cluster server must ask it.
    name = f"www.{namespace}.svc.example.test"
    response = wait_for(f"{name} via upstream", lambda: (r := query(port, name)).answer and r)
    assert addresses(response) == [cluster_ip]
