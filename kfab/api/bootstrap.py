"""What every cluster has from its first start: the system namespaces (as kube-apiserver's
system-namespaces controller creates them), the system PriorityClasses (its scheduling post-start hook)
and the `kubernetes` Service. Idempotent and safe to run from two API servers at once."""

from __future__ import annotations

from kfab.api import strategy
from kfab.objects.errors import APIError
from kfab.api.storage import ResourceStorage
from kfab.api.admission import AdmissionChain, AdmissionRequest
from kfab.objects.registry import REGISTRY
from kfab.store.base import Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap_namespaces(store: Store) -> list[str]:
    """Create the system namespaces that are missing; returns the names created."""
    storage = ResourceStorage(store)
    rt = REGISTRY.by_path("", "v1", "namespaces")
    created = []
    for name in SYSTEM_NAMESPACES:
        if await storage.get_or_none(rt, None, name) is not None:
            continue
        obj = strategy.prepare_create(rt, {"metadata": {"name": name, "labels": {
            "kubernetes.io/metadata.name": name}}}, None)
        try:
            await storage.create(rt, obj)
            created.append(name)
        except APIError as e:
            if e.reason != "AlreadyExists":  # another API server made it first: fine
                raise
    return created


# scheduling.SystemPriorityClasses(): for the cluster's own critical pods (DNS, proxies, agents as pods).
SYSTEM_PRIORITY_CLASSES = (
    ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their "
                                            "current node."),
    ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but "
                                               "can be moved to another node if necessary."),
)


async def bootstrap_priority_classes(store: Store) -> None:
    storage = ResourceStorage(store)
    rt = REGISTRY.by_kind("scheduling.k8s.io/v1", "PriorityClass")
    for name, value, description in SYSTEM_PRIORITY_CLASSES:
        if await storage.get_or_none(rt, None, name) is not None:
            continue
        obj = strategy.prepare_create(rt, {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": name},
                                           "value": value, "globalDefault": False, "description": description,
                                           "preemptionPolicy": "PreemptLowerPriority"}, None)
        try:
            await storage.create(rt, obj)
        except APIError as e:
            if e.reason != "AlreadyExists":
                raise


async def bootstrap_kubernetes_service(store: Store, admission: AdmissionChain, port: int, address: str) -> None:
    """The `default/kubernetes` Service in-cluster clients reach the API through, and its Endpoints naming
    this API server (kube-apiserver's bootstrap controller). The Service goes through admission, so its
    ClusterIP (the service range's first address) is held like any other. Several API servers each add
    their own address."""
    storage = ResourceStorage(store)
    svc_rt = REGISTRY.by_kind("v1", "Service")
    if await storage.get_or_none(svc_rt, "default", "kubernetes") is None:
        obj = strategy.prepare_create(svc_rt, admission.allocator.kubernetes_service(port), "default")
        req = AdmissionRequest(operation="CREATE", resource=svc_rt, subresource=None, namespace="default",
                               name="kubernetes", obj=obj, old=None, user=None)
        try:
            async with admission.admitted(req) as (admitted, _):
                await storage.create(svc_rt, admitted)
        except APIError as e:
            if e.reason != "AlreadyExists":
                raise
    port_entry = {"name": "https", "port": port, "protocol": "TCP"}
    addresses = await _kubernetes_endpoints(storage, address, port_entry)
    if addresses is not None:
        await _kubernetes_slice(storage, addresses, port_entry)


async def _kubernetes_endpoints(storage: ResourceStorage, address: str, port_entry: dict) -> list[str] | None:
    """Add this API server's address to the Endpoints `default/kubernetes`; the addresses it then lists
    (None when other writers kept winning: the next start tries again)."""
    ep_rt = REGISTRY.by_kind("v1", "Endpoints")
    for _ in range(5):
        current = await storage.get_or_none(ep_rt, "default", "kubernetes")
        if current is None:
            obj = strategy.prepare_create(ep_rt, {"metadata": {"name": "kubernetes", "labels": {
                "endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": address}], "ports": [port_entry]}]}, "default")
            try:
                await storage.create(ep_rt, obj)
                return [address]
            except APIError as e:
                if e.reason != "AlreadyExists":
                    raise
                continue
        subsets = current.get("subsets") or [{"addresses": [], "ports": [port_entry]}]
        addresses = subsets[0].setdefault("addresses", [])
        if any(a.get("ip") == address for a in addresses) and subsets[0].get("ports") == [port_entry]:
            return [a["ip"] for a in addresses]
        if not any(a.get("ip") == address for a in addresses):
            addresses.append({"ip": address})
        subsets[0]["ports"] = [port_entry]
        current["subsets"] = subsets[:1]
        try:
            await storage.update(ep_rt, current, int(current["metadata"]["resourceVersion"]))
            return [a["ip"] for a in addresses]
        except APIError as e:
            if e.reason != "Conflict":
                raise
    return None


async def _kubernetes_slice(storage: ResourceStorage, addresses: list[str], port_entry: dict) -> None:
    """The EndpointSlice `default/kubernetes` with the same API server addresses as the Endpoints (as
    kube-apiserver keeps both): service proxies read slices, so pods reach the API at the Service's IP."""
    rt = REGISTRY.by_kind("discovery.k8s.io/v1", "EndpointSlice")
    endpoints = [{"addresses": [ip], "conditions": {"ready": True}} for ip in sorted(set(addresses))]
    for _ in range(5):
        current = await storage.get_or_none(rt, "default", "kubernetes")
        try:
            if current is None:
                obj = strategy.prepare_create(rt, {
                    "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
                    "addressType": "IPv4", "endpoints": endpoints, "ports": [port_entry]}, "default")
                await storage.create(rt, obj)
                return
            if current.get("endpoints") == endpoints and current.get("ports") == [port_entry]:
                return
            current.update(endpoints=endpoints, ports=[port_entry])
            await storage.update(rt, current, int(current["metadata"]["resourceVersion"]))
            return
        except APIError as e:
            if e.reason not in ("AlreadyExists", "Conflict"):
                raise
