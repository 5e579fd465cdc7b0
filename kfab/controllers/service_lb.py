"""service-lb controller: addresses for Services of type LoadBalancer (status.loadBalancer.ingress).

Without a pool (as k3s's ServiceLB): the InternalIPs of the Ready nodes, where every worker's `kfab proxy`
answers the Service's ports; with externalTrafficPolicy Local only the nodes holding a ready endpoint (the
others would drop the traffic). With a pool (`loadbalancer_pool` in the inventory, which `kfab up` writes
as `pool` of the ConfigMap kube-system/kfab-loadbalancer, read live as MetalLB reads its configuration):
one address of it per Service, kept for the Service's life; one worker's proxy announces it on the LAN
(kfab.proxy.announce). An exhausted pool leaves the Service pending with a Warning event, retried as
addresses come free. Services with a spec.loadBalancerClass belong to another implementation.
"""

from __future__ import annotations

import asyncio

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, key_of
from kfab.machinery.informer import Informer
from kfab.objects.address_pool import AddressPool, PoolError, parse_pool
from kfab.objects.meta import meta_of, spec_of, status_of

SERVICE = rt_of("Service")
NODE = rt_of("Node")
ENDPOINTSLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
RETRY_EXHAUSTED = 10.0
CONFIG_NAMESPACE, CONFIG_NAME = "kube-system", "kfab-loadbalancer"
CONFIGMAP = rt_of("ConfigMap")
# Upstream's service controller marks each Service it gives addresses with this finalizer, and takes addresses
# back (on deletion, or when the Service stops being a LoadBalancer) only from Services that carry it: a
# status someone else wrote on another Service is not the controller's to clear.
CLEANUP_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def is_ours(svc: dict) -> bool:
    spec = spec_of(svc)
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def lb_addresses(svc: dict) -> list[str]:
    ingress = (status_of(svc).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip")]


def ready_node_ips(nodes: list[dict], names: set[str] | None = None) -> list[str]:
    ips = set()
    for node in nodes:
        meta, status = meta_of(node), status_of(node)
        if names is not None and meta.get("name") not in names:
            continue
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            ips.update(a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP")
    return sorted(ips)


def nodes_with_endpoints(slices: list[dict]) -> set[str]:
    names = set()
    for s in slices:
        for e in s.get("endpoints") or []:
            conditions = e.get("conditions") or {}
            if conditions.get("ready") is not False and not conditions.get("terminating") and e.get("nodeName"):
                names.add(e["nodeName"])
    return names


class ServiceLoadBalancerController(Controller):
    name = "service-lb-controller"
    workers = 1  # pool allocation reads what the other Services hold: one writer at a time

    def setup(self) -> None:
        self.pool: AddressPool | None = None
        self.config = Informer(self.client, CONFIGMAP, namespace=CONFIG_NAMESPACE,
                               field_selector=f"metadata.name={CONFIG_NAME}")
        self.config.add_handlers(self._config_changed, lambda old, new: self._config_changed(new),
                                 lambda _: self._config_changed(None))
        self.services = self.ctx.informer(SERVICE)
        self.nodes = self.ctx.informer(NODE)
        self.slices = self.ctx.informer(ENDPOINTSLICE)
        self.services.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self._service_gone)
        self.nodes.add_handlers(self._all, self._node_changed, self._all)
        self.slices.add_handlers(self._slice, lambda old, new: self._slice(new), self._slice)

    async def run(self) -> None:
        watch = asyncio.create_task(self.config.run(), name="loadbalancer-config")
        try:
            await self.config.synced.wait()
            await super().run()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    def _config_changed(self, config: dict | None) -> None:
        text = ((config or {}).get("data") or {}).get("pool", "").strip()
        try:
            pool = parse_pool(text) if text else None
        except PoolError as e:
            self.event(config, "Warning", "InvalidPool", f"{e}; LoadBalancer Services get node addresses meanwhile")
            pool = None
        if pool != self.pool:
            self.pool = pool
            self.log.info("loadbalancer pool: %s", pool.text if pool else "none (node addresses)")
            self._all()

    def _lb_services(self) -> list[dict]:
        return [s for s in self.services.list() if is_ours(s)]

    def _all(self, *_objs) -> None:
        for svc in self._lb_services():
            self.enqueue_obj(svc)

    def _node_changed(self, old: dict, new: dict) -> None:
        if ready_node_ips([old]) != ready_node_ips([new]):
            self._all()

    def _service_gone(self, svc: dict) -> None:
        if self.pool is not None and lb_addresses(svc):
            self._all()  # its address is free again: a pending Service may take it

    def _slice(self, s: dict) -> None:
        meta = meta_of(s)
        name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            self.enqueue(f"{meta.get('namespace')}/{name}")

    async def reconcile(self, key: str) -> float | None:
        svc = self.services.get(key)
        if svc is None:
            return None
        marked = CLEANUP_FINALIZER in (meta_of(svc).get("finalizers") or [])
        if not is_ours(svc) or meta_of(svc).get("deletionTimestamp"):
            if marked:
                if lb_addresses(svc):
                    await self.write_status(self.services, svc, dict(status_of(svc), loadBalancer={}))
                await self._mark(svc, False)
            return None
        if not marked:
            svc = await self._mark(svc, True)
            if svc is None:
                return None
        wanted, retry = (self._from_pool(svc) if self.pool is not None else (self._node_ips(svc), None))
        current = lb_addresses(svc)
        if wanted == current:
            return retry
        status = dict(status_of(svc), loadBalancer={"ingress": [{"ip": ip, "ipMode": "VIP"}
                                                                          for ip in wanted]} if wanted else {})
        if await self.write_status(self.services, svc, status) and wanted:
            self.event(svc, "Normal", "EnsuredLoadBalancer", f"Ensured load balancer at {', '.join(wanted)}")
        return retry

    async def _mark(self, svc: dict, on: bool) -> dict | None:
        """Add (on) or remove the cleanup finalizer; the Service as written, None when it is gone."""
        meta = meta_of(svc)
        patch = ({"metadata": {"finalizers": [CLEANUP_FINALIZER]}} if on else
                 {"metadata": {"$deleteFromPrimitiveList/finalizers": [CLEANUP_FINALIZER]}})
        try:
            updated = await self.client.patch(SERVICE, meta["namespace"], meta["name"], patch, "strategic")
        except APIStatusError as e:
            if e.not_found:
                return None
            raise
        self.services.remember_write(dict(updated, apiVersion=SERVICE.api_version, kind=SERVICE.kind))
        return updated

    def _node_ips(self, svc: dict) -> list[str]:
        if spec_of(svc).get("externalTrafficPolicy") == "Local":
            meta = svc["metadata"]
            slices = [s for s in self.slices.list(meta.get("namespace"))
                      if (meta_of(s).get("labels") or {}).get(SERVICE_NAME_LABEL) == meta["name"]]
            return ready_node_ips(self.nodes.list(), nodes_with_endpoints(slices))
        return ready_node_ips(self.nodes.list())

    def _from_pool(self, svc: dict) -> tuple[list[str], float | None]:
        assert self.pool is not None
        held = [ip for ip in lb_addresses(svc) if ip in self.pool]
        if held:
            return held[:1], None
        used = {ip for other in self._lb_services() if key_of(other) != key_of(svc) for ip in lb_addresses(other)}
        requested = spec_of(svc).get("loadBalancerIP")
        if requested and requested in self.pool and requested not in used:
            return [requested], None
        free = self.pool.first_free(used)
        if free is None:
            self.event(svc, "Warning", "AllocationFailed",
                       f"no address left in loadbalancer pool {self.pool.text} ({len(self.pool.addresses)} "
                       "addresses, all held by other Services)")
            return [], RETRY_EXHAUSTED
        return [free], None
