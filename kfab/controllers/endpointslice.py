"""EndpointSlice controller: the discovery.k8s.io/v1 view of the same backends as Endpoints.

Per Service with a selector: slices named `<service>-<random>` (generateName), labelled
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the Service (so the
garbage collector removes them with it), one slice per distinct port list with at most MAX_ENDPOINTS
endpoints each. Each endpoint carries conditions ready/serving/terminating, nodeName, targetRef and, for
StatefulSet pods, hostname. Existing slices are updated in place before any is created or deleted, so a
watcher sees few changes.
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.controllers.base import Controller, owner_ref
from kfab.controllers.endpoints import POD, SERVICE, Backend, endpoint_port, service_backends, service_selector

ENDPOINT_SLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100   # kube-controller-manager's --max-endpoints-per-slice default


def by_service(obj: dict) -> list[str]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


def slice_endpoint(backend: Backend, service: dict) -> dict:
    meta, spec = backend.pod["metadata"], backend.pod.get("spec") or {}
    endpoint = {"addresses": [backend.ip],
                "conditions": {"ready": backend.ready and not backend.terminating,
                               "serving": backend.ready, "terminating": backend.terminating},
                "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                              "uid": meta.get("uid")}}
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        endpoint["hostname"] = spec["hostname"]
    return endpoint


def desired_slices(service: dict, backends: list[Backend]) -> list[tuple[list[dict], list[dict]]]:
    """(ports, endpoints) of each slice the Service should have, in a stable order."""
    groups: dict[tuple, list[dict]] = {}
    has_ports = bool((service.get("spec") or {}).get("ports"))
    for b in backends:
        if has_ports and not b.ports:
            continue
        groups.setdefault(b.ports, []).append(slice_endpoint(b, service))
    if not groups:
        # An empty slice still says "this Service has no endpoints" (kube keeps a placeholder slice).
        return [([], [])]
    out = []
    for ports, endpoints in sorted(groups.items()):
        port_list = sorted((endpoint_port(p) for p in ports), key=lambda p: (p.get("name", ""), p["port"]))
        for i in range(0, len(endpoints), MAX_ENDPOINTS):
            out.append((port_list, endpoints[i:i + MAX_ENDPOINTS]))
    return out


class EndpointSliceController(Controller):
    name = "endpointslice-controller"
    workers = 4

    def setup(self) -> None:
        self.services = self.ctx.informer(SERVICE)
        self.pods = self.ctx.informer(POD)
        self.slices = self.ctx.informer(ENDPOINT_SLICE)
        self.slices.add_index("service", by_service)
        self.services.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)
        self.slices.add_handlers(None, lambda old, new: self._slice_changed(new), self._slice_changed)

    def _slice_changed(self, endpoint_slice: dict) -> None:
        for key in by_service(endpoint_slice):
            self.enqueue(key)

    def _pod_changed(self, pod: dict) -> None:
        self._enqueue_selecting(pod, (pod.get("metadata") or {}).get("labels") or {})

    def _pod_updated(self, old: dict, new: dict) -> None:
        old_labels = (old.get("metadata") or {}).get("labels") or {}
        if old_labels != ((new.get("metadata") or {}).get("labels") or {}):
            self._enqueue_selecting(old, old_labels)
        self._pod_changed(new)

    def _enqueue_selecting(self, pod: dict, labels: dict) -> None:
        for service in self.services.list((pod.get("metadata") or {}).get("namespace")):
            selector = service_selector(service)
            if selector is not None and selector.matches(labels):
                self.enqueue_obj(service)

    async def reconcile(self, key: str) -> float | None:
        service = self.services.get(key)
        existing = sorted(self.slices.by_index("service", key), key=lambda s: s["metadata"]["name"])
        if service is None or service_selector(service) is None:
            for s in existing:
                await self._delete(s)
            return None
        meta = service["metadata"]
        selector = service_selector(service)
        pods = [p for p in self.pods.list(meta["namespace"]) if selector.matches(p["metadata"].get("labels") or {})]
        wanted = desired_slices(service, service_backends(service, pods))
        labels = dict(meta.get("labels") or {}, **{SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY})
        for i, (ports, endpoints) in enumerate(wanted):
            if i < len(existing):
                await self._update(existing[i], service, labels, ports, endpoints)
            else:
                await self._create(service, labels, ports, endpoints)
        for s in existing[len(wanted):]:
            await self._delete(s)
        return None

    def _body(self, service: dict, labels: dict, ports: list[dict], endpoints: list[dict]) -> dict:
        meta = service["metadata"]
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"], "labels": labels,
                             "ownerReferences": [owner_ref(dict(service, apiVersion="v1", kind="Service"))]},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports}

    async def _create(self, service: dict, labels: dict, ports: list[dict], endpoints: list[dict]) -> None:
        created = await self.client.create(ENDPOINT_SLICE, self._body(service, labels, ports, endpoints))
        self.slices.remember_write(dict(created, apiVersion="discovery.k8s.io/v1", kind="EndpointSlice"))

    async def _update(self, current: dict, service: dict, labels: dict, ports: list[dict],
                      endpoints: list[dict]) -> None:
        if ((current.get("endpoints") or []) == endpoints and (current.get("ports") or []) == ports
                and (current["metadata"].get("labels") or {}) == labels):
            return
        body = self._body(service, labels, ports, endpoints)
        body["metadata"] = dict(current["metadata"], labels=labels,
                                ownerReferences=body["metadata"]["ownerReferences"])
        updated = await self.client.update(ENDPOINT_SLICE, body)
        self.slices.remember_write(dict(updated, apiVersion="discovery.k8s.io/v1", kind="EndpointSlice"))

    async def _delete(self, endpoint_slice: dict) -> None:
        meta = endpoint_slice["metadata"]
        try:
            await self.client.delete(ENDPOINT_SLICE, meta["namespace"], meta["name"], uid=meta.get("uid"))
        except APIStatusError as e:
            if not (e.not_found or e.code == 409):
                raise
        self.slices.remember_delete(endpoint_slice)

