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
from kfab.machinery.controller import owner_ref
from kfab.controllers.endpoints import (Backend, ServicePodsController, backends_by_ports, pod_reference, port_list,
                                        service_backends, service_selector)
from kfab.objects.meta import meta_of

ENDPOINT_SLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100   # kube-controller-manager's --max-endpoints-per-slice default


def by_service(obj: dict) -> list[str]:
    meta = meta_of(obj)
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


def slice_endpoint(backend: Backend, service: dict) -> dict:
    return {"addresses": [backend.ip],
            "conditions": {"ready": backend.ready and not backend.terminating,
                           "serving": backend.ready, "terminating": backend.terminating},
            **pod_reference(backend, service)}


def desired_slices(service: dict, backends: list[Backend]) -> list[tuple[list[dict], list[dict]]]:
    """(ports, endpoints) of each slice the Service should have, in a stable order."""
    groups = backends_by_ports(service, backends)
    if not groups:
        # An empty slice still says "this Service has no endpoints" (kube keeps a placeholder slice).
        return [([], [])]
    out = []
    for ports, group in sorted(groups.items(), key=lambda item: item[0]):
        endpoints = [slice_endpoint(b, service) for b in group]
        for i in range(0, len(endpoints), MAX_ENDPOINTS):
            out.append((port_list(ports), endpoints[i:i + MAX_ENDPOINTS]))
    return out


class EndpointSliceController(ServicePodsController):
    name = "endpointslice-controller"
    workers = 4

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.slices = self.ctx.informer(ENDPOINT_SLICE)
        self.slices.add_index("service", by_service)
        self.slices.add_handlers(None, lambda old, new: self._slice_changed(new), self._slice_changed)

    def _slice_changed(self, endpoint_slice: dict) -> None:
        for key in by_service(endpoint_slice):
            self.enqueue(key)

    async def reconcile(self, key: str) -> float | None:
        service = self.services.get(key)
        existing = sorted(self.slices.by_index("service", key), key=lambda s: s["metadata"]["name"])
        if service is None or service_selector(service) is None:
            for s in existing:
                await self._delete(s)
            return None
        meta = service["metadata"]
        pods = self.selected_pods(service, service_selector(service))
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

