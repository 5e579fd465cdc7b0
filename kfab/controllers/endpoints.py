"""Endpoints controller: for every Service with a selector, an Endpoints object of the same name listing the
selected pods - ready ones in `addresses`, not-ready ones in `notReadyAddresses` - with the Service's ports,
named targetPorts resolved per pod from its container ports (so pods of two versions may name the same port
differently numbered). Addresses are grouped into subsets by identical port lists, as kube's RepackSubsets.

`service_backends()` is the pure part and `ServicePodsController` the watching part, both shared with the
EndpointSlice controller.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, key_of
from kfab.controllers.podutil import is_ready
from kfab.objects.selectors import LabelSelector, selector_from_object
from kfab.objects.meta import meta_of, spec_of, status_of

POD = rt_of("Pod")
SERVICE = rt_of("Service")
ENDPOINTS = rt_of("Endpoints")


@dataclass(frozen=True)
class Backend:
    """One selected pod as an endpoint: its address, readiness and the Service ports resolved for it."""
    pod: dict
    ip: str
    ready: bool
    terminating: bool
    ports: tuple[tuple[str, int, str, str | None], ...]  # (name, port, protocol, appProtocol)


def service_selector(service: dict) -> LabelSelector | None:
    """The Service's selector, or None when it has none (its endpoints are managed by hand)."""
    selector = spec_of(service).get("selector")
    if not selector:
        return None
    return selector_from_object({"matchLabels": selector})


def resolve_target_port(service_port: dict, pod: dict) -> int | None:
    """A Service port's targetPort for this pod: a number as is, a name looked up in the pod's container ports
    (same protocol); None when the pod has no such port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in spec_of(pod).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def service_backends(service: dict, pods: list[dict]) -> list[Backend]:
    """The endpoints a Service should have, from the pods its selector picked (sorted by IP)."""
    spec = spec_of(service)
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    backends = []
    for pod in pods:
        status, meta = status_of(pod), meta_of(pod)
        ip = status.get("podIP")
        if not ip or status.get("phase") in ("Succeeded", "Failed"):
            continue
        terminating = bool(meta.get("deletionTimestamp"))
        if terminating and not publish_not_ready:
            continue  # a terminating pod gets no new traffic (kube drops it from Endpoints)
        ports = []
        for sp in spec.get("ports") or []:
            port = resolve_target_port(sp, pod)
            if port is None:
                continue
            ports.append((sp.get("name") or "", port, sp.get("protocol") or "TCP", sp.get("appProtocol")))
        backends.append(Backend(pod, ip, publish_not_ready or is_ready(pod), terminating, tuple(ports)))
    backends.sort(key=lambda b: (tuple(int(x) if x.isdigit() else 0 for x in b.ip.split(".")), b.ip))
    return backends


def pod_reference(backend: Backend, service: dict) -> dict:
    """What an Endpoints address and an EndpointSlice endpoint both say of their pod: targetRef, nodeName,
    and hostname."""
    meta, spec = backend.pod["metadata"], spec_of(backend.pod)
    ref: dict = {"targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                               "uid": meta.get("uid")}}
    if spec.get("nodeName"):
        ref["nodeName"] = spec["nodeName"]
    # A pod's stable DNS name (<hostname>.<service>) exists when its subdomain is this Service (StatefulSets).
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        ref["hostname"] = spec["hostname"]
    return ref


def endpoint_address(backend: Backend, service: dict) -> dict:
    return {"ip": backend.ip, **pod_reference(backend, service)}


def backends_by_ports(service: dict, backends: list[Backend]) -> dict[tuple, list[Backend]]:
    """Backends grouped by their resolved port list, in order; a pod on which none of the Service's ports
    resolves is left out."""
    has_ports = bool(spec_of(service).get("ports"))
    groups: dict[tuple, list[Backend]] = {}
    for b in backends:
        if has_ports and not b.ports:
            continue
        groups.setdefault(b.ports, []).append(b)
    return groups


def endpoint_port(port: tuple) -> dict:
    name, number, protocol, app_protocol = port
    out = {"port": number, "protocol": protocol}
    if name:
        out["name"] = name
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def port_list(ports: tuple) -> list[dict]:
    return sorted((endpoint_port(p) for p in ports), key=lambda p: (p.get("name", ""), p["port"]))


def subsets_for(service: dict, backends: list[Backend]) -> list[dict]:
    """EndpointSubsets: addresses grouped by their (resolved) port list."""
    subsets = []
    for ports, group in backends_by_ports(service, backends).items():
        subset: dict = {}
        for b in group:
            subset.setdefault("addresses" if b.ready else "notReadyAddresses", []).append(endpoint_address(b, service))
        if ports:
            subset["ports"] = port_list(ports)
        subsets.append(subset)
    return subsets


class ServicePodsController(Controller):
    """Keyed by Service; what it writes follows the pods the Service selects (Endpoints, EndpointSlices)."""

    def watch_services_and_pods(self) -> None:
        self.services = self.ctx.informer(SERVICE)
        self.pods = self.ctx.informer(POD)
        self.services.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)

    def selected_pods(self, service: dict, selector: LabelSelector) -> list[dict]:
        return [p for p in self.pods.list(service["metadata"]["namespace"])
                if selector.matches(p["metadata"].get("labels") or {})]

    def _pod_changed(self, pod: dict) -> None:
        self._enqueue_selecting(pod, meta_of(pod).get("labels") or {})

    def _pod_updated(self, old: dict, new: dict) -> None:
        old_labels = meta_of(old).get("labels") or {}
        if old_labels != (meta_of(new).get("labels") or {}):
            self._enqueue_selecting(old, old_labels)  # the Services that selected it may lose it
        self._pod_changed(new)

    def _enqueue_selecting(self, pod: dict, labels: dict) -> None:
        for service in self.services.list(meta_of(pod).get("namespace")):
            selector = service_selector(service)
            if selector is not None and selector.matches(labels):
                self.enqueue_obj(service)


class EndpointsController(ServicePodsController):
    name = "endpoint-controller"
    workers = 4

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.endpoints = self.ctx.informer(ENDPOINTS)
        self.endpoints.add_handlers(None, lambda old, new: self._endpoints_changed(new), self._endpoints_changed)

    def _endpoints_changed(self, endpoints: dict) -> None:
        if self.services.get(key_of(endpoints)) is not None:
            self.enqueue_obj(endpoints)  # somebody edited or deleted what we manage: put it back

    async def reconcile(self, key: str) -> float | None:
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            if current is not None:
                await self._delete(current)
            return None
        selector = service_selector(service)
        if selector is None:
            return None  # no selector: the user manages this Service's Endpoints
        meta = service["metadata"]
        subsets = subsets_for(service, service_backends(service, self.selected_pods(service, selector)))
        labels = dict(meta.get("labels") or {})
        if current is not None and (current.get("subsets") or []) == subsets and \
                (current["metadata"].get("labels") or {}) == labels:
            return None
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
                "subsets": subsets}
        try:
            if current is None:
                written = await self.client.create(ENDPOINTS, body)
            else:
                body["metadata"] = dict(current["metadata"], labels=labels)
                written = await self.client.update(ENDPOINTS, body)
        except APIStatusError as e:
            if e.already_exists or e.conflict or e.not_found:
                raise  # the cache is behind: retried with backoff once the informer caught up
            self.event(service, "Warning", "FailedToUpdateEndpoint",
                       f"Failed to update endpoint {key}: {e.message}")
            raise
        self.endpoints.remember_write(dict(written, apiVersion="v1", kind="Endpoints"))
        return None

    async def _delete(self, endpoints: dict) -> None:
        meta = endpoints["metadata"]
        try:
            await self.client.delete(ENDPOINTS, meta["namespace"], meta["name"], uid=meta.get("uid"))
        except APIStatusError as e:
            if not (e.not_found or e.code == 409):
                raise
        self.endpoints.remember_delete(endpoints)
