"""Defaults of the core kinds other than Pod (pkg/apis/core/v1/defaults.go and the create strategies)."""

from __future__ import annotations

import base64

from kfab.objects.defaults.pod import _d, _items

_RBAC_GROUP = "rbac.authorization.k8s.io"


def default_service(svc: dict) -> None:
    spec = _d(svc, "spec")
    spec.setdefault("type", "ClusterIP")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _d(_d(spec, "sessionAffinityConfig"), "clientIP")
        client_ip.setdefault("timeoutSeconds", 10800)
    for port in _items(spec.get("ports")):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    service_type = spec.get("type")
    externally_accessible = service_type in ("NodePort", "LoadBalancer") or (
        service_type == "ClusterIP" and spec.get("externalIPs"))
    if externally_accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if service_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    # clusterIP and clusterIPs are two views of one value (normalizeClusterIPs).
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif spec.get("clusterIPs") and not spec.get("clusterIP") and isinstance(spec["clusterIPs"], list):
        spec["clusterIP"] = spec["clusterIPs"][0]
    if service_type != "ExternalName":
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        # An IPv4-only cluster: one family; a headless Service without selector asks for all families.
        spec.setdefault("ipFamilyPolicy", "RequireDualStack" if headless_without_selector else "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])


def default_namespace(ns: dict, create: bool = True) -> None:
    meta = _d(ns, "metadata")
    if isinstance(meta.get("name"), str) and meta["name"]:
        _d(meta, "labels")["kubernetes.io/metadata.name"] = meta["name"]
    if create:  # only a new namespace gets the finalizer: the namespace controller removes it to finish a delete
        spec = _d(ns, "spec")
        if not spec.get("finalizers"):
            spec["finalizers"] = ["kubernetes"]
    _d(ns, "status").setdefault("phase", "Active")


def default_pvc_spec(spec: dict) -> None:
    spec.setdefault("volumeMode", "Filesystem")


def default_pvc(pvc: dict) -> None:
    default_pvc_spec(_d(pvc, "spec"))
    _d(pvc, "status").setdefault("phase", "Pending")


def default_pv(pv: dict) -> None:
    spec = _d(pv, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        spec["hostPath"].setdefault("type", "")
    _d(pv, "status").setdefault("phase", "Pending")


def default_secret(secret: dict) -> None:
    secret.setdefault("type", "Opaque")
    # stringData is write-only: merged into data (base64) and never stored, as the v1 conversion does.
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _d(secret, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def default_endpoints(ep: dict) -> None:
    for subset in _items(ep.get("subsets")):
        for port in _items(subset.get("ports")):
            port.setdefault("protocol", "TCP")


def default_endpoint_slice(eps: dict) -> None:
    for port in _items(eps.get("ports")):
        port.setdefault("protocol", "TCP")
        port.setdefault("name", "")


def default_node(node: dict) -> None:
    status = node.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def default_binding(binding: dict) -> None:
    for subject in _items(binding.get("subjects")):
        if "apiGroup" not in subject:
            subject["apiGroup"] = "" if subject.get("kind") == "ServiceAccount" else _RBAC_GROUP
        if subject.get("kind") == "ServiceAccount" and not subject["apiGroup"]:
            subject.pop("apiGroup")


def default_storage_class(sc: dict) -> None:
    sc.setdefault("reclaimPolicy", "Delete")
    sc.setdefault("volumeBindingMode", "Immediate")


def default_priority_class(pc: dict) -> None:
    pc.setdefault("value", 0)  # int32, not a pointer: an unset value is Go's zero
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")
