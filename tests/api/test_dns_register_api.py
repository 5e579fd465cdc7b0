"""`kfab dns --service kube-system/kube-dns --service-ip IP` against a real `kfab server`, as user system:kube-dns
(its bootstrap ClusterRole, the identity role pki gives workers): each server puts the Service at the fixed
ClusterIP and its own EndpointSlice, answers the Service's name, and takes its slice away on a clean stop."""

from __future__ import annotations

import json
import signal

from tests.api.conftest import run_kubectl, user_kubeconfig
from tests.api.test_dns_api import addresses, free_port, query, start_dns, stop
from tests.waiting import wait_until

DNS_IP = "10.96.0.10"


def slices(kubectl) -> dict[str, list]:
    out = kubectl("get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns",
                  "-o", "json").stdout
    return {s["metadata"]["name"]: [(a, p["port"]) for e in s["endpoints"] for a in e["addresses"]
                                    for p in s["ports"] if p["protocol"] == "UDP"]
            for s in json.loads(out)["items"]}


def test_dns_servers_keep_the_kube_dns_service_and_their_own_slices(kfab_server, kubectl, tmp_path):
    creds = user_kubeconfig(kfab_server.data_dir, tmp_path, "system:kube-dns")
    ports = {"h1": free_port(), "h2": free_port()}
    servers = {name: start_dns(creds, port, "--service", "kube-system/kube-dns", "--service-ip", DNS_IP,
                               "--endpoint-name", name, log=tmp_path / f"{name}.log")
               for name, port in ports.items()}
    try:
        want = {f"kube-dns-{n}": [("127.0.0.1", p)] for n, p in ports.items()}
        wait_until("a slice per DNS server", lambda: slices(kubectl) == want)
        svc = json.loads(kubectl("get", "service", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
        assert svc["spec"]["clusterIP"] == DNS_IP and "selector" not in svc["spec"]
        # whichever server came first made it, pointing at its port
        targets = sorted((p["protocol"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"])
        assert targets in ([("TCP", 53, port), ("UDP", 53, port)] for port in ports.values()), targets
        name = "kube-dns.kube-system.svc.cluster.local"
        assert wait_until("the Service's own name", lambda: addresses(query(ports["h2"], name)) == [DNS_IP])

        servers["h1"].send_signal(signal.SIGTERM)
        assert servers["h1"].wait(15) == 0
        wait_until("h1's slice gone", lambda: slices(kubectl) == {"kube-dns-h2": [("127.0.0.1", ports["h2"])]})
    finally:
        for proc in servers.values():
            stop(proc)
        kubectl("delete", "endpointslice", "-n", "kube-system", "kube-dns-h2", "--ignore-not-found")
        kubectl("delete", "service", "-n", "kube-system", "kube-dns", "--ignore-not-found")


def test_the_dns_identity_reads_services_but_no_secrets(kfab_server, tmp_path):
    creds = user_kubeconfig(kfab_server.data_dir, tmp_path, "system:kube-dns")
    assert run_kubectl(creds, "get", "services", "-A").returncode == 0
    denied = run_kubectl(creds, "get", "secrets", "-A")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    denied = run_kubectl(creds, "delete", "service", "kubernetes")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
