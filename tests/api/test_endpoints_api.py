"""Endpoints and EndpointSlices follow the pods a Service selects: ready ones in addresses, not-ready ones in
notReadyAddresses, named targetPorts resolved per pod. Pod readiness is flipped the way a kubelet reports it,
through the pods/status subresource (the pods are bound to a node without a kubelet, so nothing else writes)."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.waiting import wait_until


NODE = "no-kubelet-node"


@pytest.fixture
def core(k8s):
    return client.CoreV1Api(k8s)


def make_pod(core, ns: str, name: str, ip: str, port: int, ready: bool, labels: dict | None = None) -> None:
    core.create_namespaced_pod(ns, {
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "web", "image": "nginx",
                                                  "ports": [{"name": "http", "containerPort": port}]}]}})
    set_ready(core, ns, name, ready, ip)


def set_ready(core, ns: str, name: str, ready: bool, ip: str | None = None) -> None:
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}])
    core.patch_namespaced_pod_status(name, ns, {"status": status})


def service(core, ns: str, name: str = "web", **spec) -> None:
    body = {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "h", "port": 80, "targetPort": "http"}], **spec}}
    core.create_namespaced_service(ns, body)


def endpoints_view(core, ns: str, name: str = "web") -> dict:
    """{"ready": {ip: port}, "not_ready": {ip: port}} from the Endpoints object (empty when it does not exist)."""
    try:
        ep = core.read_namespaced_endpoints(name, ns)
    except client.ApiException as e:
        if e.status == 404:
            return {"ready": {}, "not_ready": {}}
        raise
    view = {"ready": {}, "not_ready": {}}
    for subset in ep.subsets or []:
        port = subset.ports[0].port if subset.ports else None
        for a in subset.addresses or []:
            view["ready"][a.ip] = port
        for a in subset.not_ready_addresses or []:
            view["not_ready"][a.ip] = port
    return view


def slices_view(k8s, ns: str, name: str = "web") -> dict:
    slices = client.DiscoveryV1Api(k8s).list_namespaced_endpoint_slice(
        ns, label_selector=f"kubernetes.io/service-name={name}").items
    view = {}
    for s in slices:
        port = s.ports[0].port if s.ports else None
        for e in s.endpoints or []:
            view[e.addresses[0]] = (bool(e.conditions.ready), port, e.target_ref.name, e.node_name)
    return view


def test_endpoints_follow_readiness_and_resolve_named_ports_per_pod(core, k8s, namespace):
    ns = namespace
    make_pod(core, ns, "a", "10.9.0.1", 8080, ready=True)
    make_pod(core, ns, "b", "10.9.0.2", 9090, ready=False)   # same port name, another number
    make_pod(core, ns, "other", "10.9.0.3", 8080, ready=True, labels={"app": "other"})
    service(core, ns)
    want = {"ready": {"10.9.0.1": 8080}, "not_ready": {"10.9.0.2": 9090}}
    wait_until(f"Endpoints {want}", lambda: endpoints_view(core, ns) == want, 20)
    ep = core.read_namespaced_endpoints("web", ns)
    address = next(a for s in ep.subsets for a in s.addresses or [])
    assert (address.target_ref.kind, address.target_ref.name, address.node_name) == ("Pod", "a", NODE)
    assert ep.metadata.labels == {"tier": "front"}
    assert wait_until("slices",
                      lambda: slices_view(k8s, ns) == {"10.9.0.1": (True, 8080, "a", NODE),
                                                       "10.9.0.2": (False, 9090, "b", NODE)}, 20)

    set_ready(core, ns, "b", True)
    set_ready(core, ns, "a", False)
    want = {"ready": {"10.9.0.2": 9090}, "not_ready": {"10.9.0.1": 8080}}
    wait_until(f"Endpoints {want}", lambda: endpoints_view(core, ns) == want, 20)
    wait_until("slices after the flip",
               lambda: slices_view(k8s, ns) == {"10.9.0.1": (False, 8080, "a", NODE),
                                                "10.9.0.2": (True, 9090, "b", NODE)}, 20)

    core.delete_namespaced_pod("b", ns, grace_period_seconds=0)
    want = {"ready": {}, "not_ready": {"10.9.0.1": 8080}}
    wait_until("Endpoints without the deleted pod", lambda: endpoints_view(core, ns) == want, 20)

    # Relabelling a pod into the selector adds it.
    core.patch_namespaced_pod("other", ns, {"metadata": {"labels": {"app": "web"}}})
    want = {"ready": {"10.9.0.3": 8080}, "not_ready": {"10.9.0.1": 8080}}
    wait_until("Endpoints with the relabelled pod", lambda: endpoints_view(core, ns) == want, 20)


def test_kubectl_shows_endpoints_and_they_go_with_the_service(core, kubectl, namespace):
    ns = namespace
    make_pod(core, ns, "a", "10.9.1.1", 8080, ready=True)
    service(core, ns)
    wait_until("kubectl get endpoints to list 10.9.1.1:8080",
               lambda: "10.9.1.1:8080" in kubectl("get", "endpoints", "web", "-n", ns).stdout, 20)
    kubectl("delete", "service", "web", "-n", ns)
    wait_until("the Endpoints to go with the Service",
               lambda: kubectl("get", "endpoints", "web", "-n", ns, check=False).returncode != 0, 20)


def test_publish_not_ready_addresses(core, namespace):
    ns = namespace
    make_pod(core, ns, "a", "10.9.2.1", 8080, ready=False)
    service(core, ns, publishNotReadyAddresses=True)
    wait_until("a not-ready pod published as ready",
               lambda: endpoints_view(core, ns) == {"ready": {"10.9.2.1": 8080}, "not_ready": {}}, 20)


def test_service_without_selector_keeps_its_hand_written_endpoints(core, namespace):
    ns = namespace
    core.create_namespaced_service(ns, {"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 5432}]}})
    core.create_namespaced_endpoints(ns, {"metadata": {"name": "ext"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]})
    make_pod(core, ns, "a", "10.9.3.1", 8080, ready=True)
    service(core, ns, name="marker")   # once the controller handled this one, it has seen everything before
    wait_until("the marker Service's endpoints", lambda: endpoints_view(core, ns, "marker")["ready"], 20)
    assert endpoints_view(core, ns, "ext") == {"ready": {"192.0.2.10": 5432}, "not_ready": {}}
