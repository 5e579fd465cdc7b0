"""Role dns on the scenario's worker (testinfra over SSH): `kfab dns` runs as a unit on the worker's address,
port 53 (UDP and TCP); it keeps the Service kube-system/kube-dns at the cluster DNS IP and its own EndpointSlice
(as the cluster admin sees them with kubectl from here); and names resolve through it, asked from the
control-plane host: the `kubernetes` Service, kube-dns itself, NXDOMAIN for a Service that does not exist, and a
Service created now, once the server's watch has seen it."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

LAB = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
WORKER = next(iter(LAB["children"]["workers"]["hosts"]))
WORKER_ADDRESS = LAB["children"]["workers"]["hosts"][WORKER]["ansible_host"]
CONTROL_PLANE = next(iter(LAB["children"]["control_plane"]["hosts"]))
DNS_IP = "10.96.0.10"   # the role's kfab_dns_ip
DOMAIN = "cluster.local"   # the role's kfab_dns_domain
KUBECONFIG = Path(f"~/.local/share/kfab/clusters/{LAB['vars']['kfab_lab_network']}/admin.kubeconfig").expanduser()

testinfra_hosts = [f"ansible://{WORKER}"]


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 or not check, (args, out.stderr)
    return out


@pytest.fixture
def dig(host, request):
    """dig on the control-plane host, asking the worker's server: '+short' answers, or the whole reply."""
    asker = host.get_host(f"ansible://{CONTROL_PLANE}", ansible_inventory=request.config.option.ansible_inventory)
    return lambda name, *opts: asker.check_output(f"dig @{WORKER_ADDRESS} -p 53 +time=5 +tries=1 {' '.join(opts)} "
                                                  f"{name}")


def test_dns_runs_on_the_workers_address(host):
    service = host.service("kfab-dns")
    assert service.is_running and service.is_enabled
    assert host.socket(f"udp://{WORKER_ADDRESS}:53").is_listening
    assert host.socket(f"tcp://{WORKER_ADDRESS}:53").is_listening
    assert host.file("/etc/kfab/dns.kubeconfig").mode == 0o600


def test_service_and_its_endpointslice():
    service = json.loads(kubectl("get", "service", "-n", "kube-system", "kube-dns", "-o", "json").stdout)
    assert service["spec"]["clusterIP"] == DNS_IP
    assert sorted((p["port"], p["protocol"]) for p in service["spec"]["ports"]) == [(53, "TCP"), (53, "UDP")]
    slice_ = json.loads(kubectl("get", "endpointslice", "-n", "kube-system", f"kube-dns-{WORKER}",
                                "-o", "json").stdout)
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert [e["addresses"] for e in slice_["endpoints"]] == [[WORKER_ADDRESS]], slice_


def test_cluster_names_resolve_through_it(dig):
    assert dig(f"kubernetes.default.svc.{DOMAIN}", "+short").split() == ["10.96.0.1"]
    assert dig(f"kube-dns.kube-system.svc.{DOMAIN}", "+short", "+tcp").split() == [DNS_IP]
    assert "status: NXDOMAIN" in dig(f"no-such-service.default.svc.{DOMAIN}")


def test_a_new_service_resolves(dig):
    name = "molecule-dns-probe"
    kubectl("delete", "service", name, "--ignore-not-found")
    kubectl("create", "service", "clusterip", name, "--tcp=80:80")
    try:
        cluster_ip = json.loads(kubectl("get", "service", name, "-o", "json").stdout)["spec"]["clusterIP"]
        deadline = time.monotonic() + 60
        while (answer := dig(f"{name}.default.svc.{DOMAIN}", "+short").split()) != [cluster_ip]:
            assert time.monotonic() < deadline, f"{name} never resolved to {cluster_ip} (last answer {answer})"
            time.sleep(0.5)
    finally:
        kubectl("delete", "service", name, "--ignore-not-found", check=False)
