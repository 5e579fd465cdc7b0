"""LoadBalancer Services get addresses from the service-lb controller: the Ready nodes' addresses without a
pool (k3s ServiceLB), one pool address each with a pool (ConfigMap kube-system/kfab-loadbalancer, written by
`kfab up` from loadbalancer_pool), pending with an event when the pool is exhausted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kubernetes import client

from tests.api.conftest import REPO
from tests.api.test_tables_kubectl import row, table
from tests.waiting import wait_until


def lb_service(name: str, **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                               {"name": "dns-udp", "port": 53, "protocol": "UDP"}], **spec}}


def external_ips(core, namespace: str, name: str) -> list[str]:
    ingress = (core.read_namespaced_service(name, namespace).status.load_balancer.ingress or [])
    return sorted(i.ip for i in ingress)


@pytest.fixture
def ready_node(k8s, namespace):
    core = client.CoreV1Api(k8s)
    name = f"lb-{namespace}"
    core.create_node({"metadata": {"name": name}})
    core.patch_node_status(name, {"status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.31"}],
                                             "conditions": [{"type": "Ready", "status": "True"}]}})
    yield name
    core.delete_node(name)


def test_without_a_pool_the_service_gets_the_ready_nodes_addresses(kubectl, k8s, namespace, ready_node):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_service(namespace, lb_service("pihole"))
    wait_until("the node's address", lambda: "192.0.2.31" in external_ips(core, namespace, "pihole"))
    headers, rows = table(kubectl("get", "svc", "-n", namespace).stdout)
    assert "192.0.2.31" in row(rows, "pihole")[headers.index("EXTERNAL-IP")].split(",")
    # A node that stops being Ready stops being an address of the Service.
    core.patch_node_status(ready_node, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    wait_until("the address to go", lambda: "192.0.2.31" not in external_ips(core, namespace, "pihole"))


def put_pool(kfab_server, pool: str) -> str:
    """What role control-plane runs with the inventory's loadbalancer_pool."""
    done = subprocess.run([sys.executable, "-m", "kfab.install.loadbalancer_pool", "--kubeconfig",
                           str(kfab_server.kubeconfig), "--pool", pool], capture_output=True, text=True, cwd=REPO,
                          check=True, timeout=60)
    return done.stdout.strip()


def test_pool_addresses_are_given_once_and_an_exhausted_pool_leaves_the_service_pending(kubectl, k8s, namespace,
                                                                                       kfab_server):
    core = client.CoreV1Api(k8s)
    assert put_pool(kfab_server, "192.0.2.240-192.0.2.241") == "changed"
    assert put_pool(kfab_server, "192.0.2.240-192.0.2.241") == "ok"
    try:
        for name in ("one", "two"):
            core.create_namespaced_service(namespace, lb_service(name))
        wait_until("pool addresses",
                   lambda: external_ips(core, namespace, "one") and external_ips(core, namespace, "two"))
        assert sorted(external_ips(core, namespace, "one") + external_ips(core, namespace, "two")) == \
            ["192.0.2.240", "192.0.2.241"]
        core.create_namespaced_service(namespace, lb_service("three"))

        def warned():
            events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
            return [e for e in events if e["involvedObject"]["name"] == "three" and e["reason"] == "AllocationFailed"]
        assert "no address left in loadbalancer pool 192.0.2.240-192.0.2.241" in wait_until("an event", warned)[0][
            "message"]
        headers, rows = table(kubectl("get", "svc", "-n", namespace).stdout)
        assert row(rows, "three")[headers.index("EXTERNAL-IP")] == "<pending>"
        assert "AllocationFailed" in kubectl("describe", "svc", "three", "-n", namespace).stdout
        freed = external_ips(core, namespace, "one")
        core.delete_namespaced_service("one", namespace)
        wait_until("the freed address to move to 'three'", lambda: external_ips(core, namespace, "three") == freed)
    finally:
        assert put_pool(kfab_server, "") == "changed"
    # Without the pool the Service that held a pool address gets node addresses instead.
    wait_until("the pool address to be given back",
               lambda: not any(ip.startswith("192.0.2.24") for ip in external_ips(core, namespace, "three")))


def test_the_controller_takes_back_only_addresses_it_gave(k8s, namespace, ready_node):
    core = client.CoreV1Api(k8s)
    # A LoadBalancer Service gets upstream's cleanup finalizer with its address ...
    core.create_namespaced_service(namespace, lb_service("mine"))
    wait_until("the node's address", lambda: "192.0.2.31" in external_ips(core, namespace, "mine"))
    assert "service.kubernetes.io/load-balancer-cleanup" in core.read_namespaced_service(
        "mine", namespace).metadata.finalizers
    # ... a status another writer put on a ClusterIP Service is left alone (it has no such finalizer) ...
    core.create_namespaced_service(namespace, {"metadata": {"name": "theirs"},
                                               "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    core.patch_namespaced_service_status("theirs", namespace,
                                         {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    # ... and a Service that stops being a LoadBalancer loses the address and the finalizer.
    core.patch_namespaced_service("mine", namespace, {"spec": {"type": "ClusterIP"}})
    wait_until("the address taken back", lambda: not external_ips(core, namespace, "mine"))
    wait_until("the finalizer removed",
               lambda: not core.read_namespaced_service("mine", namespace).metadata.finalizers)
    assert external_ips(core, namespace, "theirs") == ["192.0.2.10"]
    # Deleting a LoadBalancer Service completes: the controller lets it go.
    core.patch_namespaced_service("mine", namespace, {"spec": {"type": "LoadBalancer"}})
    wait_until("the finalizer back", lambda: core.read_namespaced_service("mine", namespace).metadata.finalizers)
    core.delete_namespaced_service("mine", namespace)
    wait_until("the Service gone", lambda: "mine" not in [
        s.metadata.name for s in core.list_namespaced_service(namespace).items])
