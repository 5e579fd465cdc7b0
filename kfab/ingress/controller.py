"""The control side of `kfab ingress`, on the process's shared informers (Ingresses, IngressClasses, Services,
EndpointSlices, Secrets, Nodes):

- IngressRouter keeps the data path's configuration: every change rebuilds the routing table and the SNI
  certificates (debounced) and swaps them in — one table for all Ingresses of our classes, as the proxy's
  nftables table is one for all Services;
- IngressStatusController (the machinery's Controller: reconcile(key) per Ingress) writes status.loadBalancer
  (the Ready nodes' InternalIPs: every worker runs this and answers on its own address) and reports what the
  router could not serve (a bad TLS Secret, a path another Ingress holds) as Warning events, once each.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from kfab.client import APIStatusError, Client, rt_of
from kfab.ingress.backends import SERVICE_NAME_LABEL, addresses, ready_endpoint
from kfab.ingress.certs import SecretError, context_from_secret
from kfab.ingress.proxy import Routing
from kfab.ingress.routes import CLASS_NAME, CONTROLLER, Backend, build_routes, ours
from kfab.machinery.controller import Controller, ControllerContext, key_of
from kfab.objects.meta import meta_of, spec_of, status_of

log = logging.getLogger(__name__)

INGRESS = rt_of("Ingress", "networking.k8s.io/v1")
INGRESS_CLASS = rt_of("IngressClass", "networking.k8s.io/v1")
SERVICE, SECRET, NODE = rt_of("Service"), rt_of("Secret"), rt_of("Node")
ENDPOINTSLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
DEBOUNCE = 0.05


def default_ingress_class() -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": CONTROLLER}}


async def ensure_ingress_class(client: Client) -> None:
    try:
        await client.create(INGRESS_CLASS, default_ingress_class())
    except APIStatusError as e:
        if not e.already_exists:
            log.warning("cannot create IngressClass %s: %s", CLASS_NAME, e)


def node_addresses(nodes: list[dict]) -> list[str]:
    """InternalIPs of the Ready nodes, sorted: where the ingress answers."""
    out = set()
    for node in nodes:
        status = status_of(node)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready:
            out.update(a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP")
    return sorted(out)


def _slice_service(s: dict) -> list[str]:
    meta = meta_of(s)
    return [f"{meta.get('namespace', '')}/{(meta.get('labels') or {}).get(SERVICE_NAME_LABEL, '')}"]


class IngressRouter:
    def __init__(self, ctx: ControllerContext):
        self.ingresses = ctx.informer(INGRESS)
        self.classes = ctx.informer(INGRESS_CLASS)
        self.services = ctx.informer(SERVICE)
        self.slices = ctx.informer(ENDPOINTSLICE)
        self.secrets = ctx.informer(SECRET)
        self.slices.add_index("service", _slice_service)
        self.routing = Routing(self._addresses)
        self.contexts: dict[tuple[str, str], ssl.SSLContext] = {}   # (namespace/name, resourceVersion)
        self.by_secret: dict[str, ssl.SSLContext] = {}
        self.served: set[str] = set()                                # keys of the Ingresses of our classes
        self.problems: dict[str, list[tuple[str, str]]] = {}         # Ingress key -> [(reason, message)]
        self._no_endpoints: dict[Backend, tuple] = {}               # backend -> the last view logged as 503
        self.synced = asyncio.Event()
        self.on_synced = lambda keys: None                           # set by the status controller
        self._changed = asyncio.Event()
        for informer in (self.ingresses, self.classes, self.secrets):
            informer.add_handlers(self._on_change, self._on_change, self._on_change)

    # --- what the data path asks ------------------------------------------------------------------------
    def _addresses(self, backend: Backend) -> list[tuple[str, int]]:
        service = self.services.get_by(backend.namespace, backend.service)
        slices = self.slices.by_index("service", f"{backend.namespace}/{backend.service}")
        found = addresses(backend, service, slices)
        if not found:
            self._log_no_endpoints(backend, service, slices)
        return found

    def _log_no_endpoints(self, backend: Backend, service: dict | None, slices: list[dict]) -> None:
        """Why a backend answers 503, once per view of it: what this ingress's caches held, not the API's."""
        def versions(s: dict) -> str:
            endpoints = s.get("endpoints") or []
            ready = sum(map(ready_endpoint, endpoints))
            return f"{meta_of(s).get('name')} rv {meta_of(s).get('resourceVersion')} {ready}/{len(endpoints)} ready"
        view = (meta_of(service).get("resourceVersion") if service else None, sorted(map(versions, slices)))
        if self._no_endpoints.get(backend) == view:
            return
        self._no_endpoints[backend] = view
        log.info("%s: no ready endpoint to send to (503): Service %s; EndpointSlices: %s", backend,
                 f"rv {view[0]}" if service else "not in the cache", "; ".join(view[1]) or "none")

    def sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        """ssl's SNI callback: the certificate of the host asked for, else the default one."""
        if server_name:
            secret = self.routing.table.tls_secret(server_name)
            ctx = self.by_secret.get(f"{secret[0]}/{secret[1]}") if secret else None
            if ctx is not None:
                sslobj.context = ctx

    # --- rebuilding ---------------------------------------------------------------------------------------
    def class_names(self) -> set[str]:
        names = set()
        for ic in self.classes.list():
            meta = meta_of(ic)
            if spec_of(ic).get("controller") == CONTROLLER:
                names.add(meta.get("name", ""))
                if (meta.get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                    names.add("")  # Ingresses without a class are ours too
        return names

    def sync(self) -> None:
        """Rebuild the table and the certificates from the caches and swap them in."""
        names = self.class_names()
        served = {key_of(i): i for i in self.ingresses.list() if ours(i, names)}
        table = build_routes(list(served.values()))
        problems: dict[str, list[tuple[str, str]]] = {}
        contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        for namespace, name in set(table.tls.values()) | set(table.tls_wildcards.values()):
            secret = self.secrets.get_by(namespace, name)
            version = (f"{namespace}/{name}", meta_of(secret or {}).get("resourceVersion", ""))
            try:
                contexts[version] = self.contexts.get(version) or context_from_secret(secret, namespace, name)
            except SecretError as e:
                for key, ingress in served.items():
                    uses = any(t.get("secretName") == name for t in spec_of(ingress).get("tls") or [])
                    if key.startswith(f"{namespace}/") and uses:
                        problems.setdefault(key, []).append(
                            ("InvalidTLSSecret", f"{e}; serving the default certificate"))
        for conflict in table.conflicts:
            problems.setdefault(conflict.ingress, []).append(
                ("Conflict", conflict.message + "; that path is not served from this ingress"))
        self.contexts = contexts
        self.by_secret = {key: ctx for (key, _), ctx in contexts.items()}
        self.routing.table, self.served, self.problems = table, set(served), problems

    def _on_change(self, *_objs) -> None:
        self._changed.set()

    async def run(self) -> None:
        """After the caches are synced: rebuild on every change, DEBOUNCE after the first of a burst."""
        self._changed.set()
        while True:
            await self._changed.wait()
            await asyncio.sleep(DEBOUNCE)
            self._changed.clear()
            self.sync()
            self.synced.set()
            self.on_synced(self.served)


class IngressStatusController(Controller):
    name = "kfab-ingress"
    workers = 2

    def __init__(self, ctx: ControllerContext, router: IngressRouter):
        self.router = router
        super().__init__(ctx)

    def setup(self) -> None:
        self.ingresses = self.ctx.informer(INGRESS)
        self.nodes = self.ctx.informer(NODE)
        self.nodes.add_handlers(self._all, lambda old, new: self._all(), self._all)
        self.router.on_synced = lambda keys: [self.enqueue(k) for k in keys]
        self._reported: set[tuple[str, str, str]] = set()

    def _all(self, *_objs) -> None:
        for key in self.router.served:
            self.enqueue(key)

    async def reconcile(self, key: str) -> float | None:
        ingress = self.ingresses.get(key)
        if ingress is None or key not in self.router.served:
            return None
        uid = meta_of(ingress).get("uid", "")
        for reason, message in self.router.problems.get(key, []):
            if (uid, reason, message) not in self._reported:  # once per Ingress and problem, not per rebuild
                self._reported.add((uid, reason, message))
                log.warning("ingress %s: %s", key, message)
                self.event(ingress, "Warning", reason, message)
        ips = node_addresses(self.nodes.list())
        wanted = {"ingress": [{"ip": ip} for ip in ips]} if ips else {}
        await self.write_status(self.ingresses, ingress, dict(status_of(ingress), loadBalancer=wanted))
        return None
