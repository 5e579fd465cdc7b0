"""The control side of `kfab ingress`: informers on Ingresses, IngressClasses, Services, EndpointSlices,
Secrets and Nodes; every change rebuilds the routing table and the SNI certificates (debounced), reports
what cannot be served as Events on the Ingress, and writes status.loadBalancer (the Ready nodes' InternalIPs:
every worker runs this controller and answers on its own address)."""

from __future__ import annotations

import asyncio
import logging
import ssl

from kfab.client import APIStatusError, Client, rt_of
from kfab.ingress.backends import addresses
from kfab.ingress.certs import SecretError, context_from_secret
from kfab.ingress.proxy import Routing
from kfab.ingress.routes import CLASS_NAME, CONTROLLER, Backend, build_routes, ours
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import Informer
from kfab.objects.meta import meta_of, spec_of, status_of

log = logging.getLogger(__name__)

INGRESS = rt_of("Ingress", "networking.k8s.io/v1")
INGRESS_CLASS = rt_of("IngressClass", "networking.k8s.io/v1")
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
COMPONENT = "kfab-ingress"
DEBOUNCE = 0.05


def default_ingress_class() -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": CONTROLLER}}


def node_addresses(nodes: list[dict]) -> list[str]:
    """InternalIPs of the Ready nodes, sorted: where this controller answers."""
    out = set()
    for node in nodes:
        status = status_of(node)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready:
            out.update(a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP")
    return sorted(out)


class IngressController:
    def __init__(self, client: Client, default_ssl: ssl.SSLContext, host: str = ""):
        self.client = client
        self.default_ssl = default_ssl
        self.ingresses = Informer(client, INGRESS)
        self.classes = Informer(client, INGRESS_CLASS)
        self.services = Informer(client, rt_of("Service"))
        self.slices = Informer(client, rt_of("EndpointSlice", "discovery.k8s.io/v1"))
        self.secrets = Informer(client, rt_of("Secret"))
        self.nodes = Informer(client, rt_of("Node"))
        self.slices.add_index("service", lambda s: [
            f"{(s.get('metadata') or {}).get('namespace', '')}/"
            f"{((s.get('metadata') or {}).get('labels') or {}).get('kubernetes.io/service-name', '')}"])
        self.routing = Routing(self._addresses)
        self.contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self.by_secret: dict[str, ssl.SSLContext] = {}
        self.events = EventRecorder(client, host)
        self._changed = asyncio.Event()
        self._reported: set[tuple[str, str, str]] = set()

    # --- what the data path asks ------------------------------------------------------------------------
    def _addresses(self, backend: Backend) -> list[tuple[str, int]]:
        service = self.services.get_by(backend.namespace, backend.service)
        return addresses(backend, service, self.slices.by_index("service", f"{backend.namespace}/{backend.service}"))

    def sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        """ssl's SNI callback: the certificate of the host asked for, else the default one."""
        if server_name:
            secret = self.routing.table.tls_secret(server_name)
            ctx = self.by_secret.get(f"{secret[0]}/{secret[1]}") if secret else None
            if ctx is not None:
                sslobj.context = ctx

    # --- the loop -------------------------------------------------------------------------------------
    def class_names(self) -> set[str]:
        names = set()
        for ic in self.classes.list():
            if spec_of(ic).get("controller") == CONTROLLER:
                name = meta_of(ic).get("name", "")
                names.add(name)
                if (meta_of(ic).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                    names.add("")  # Ingresses without a class are ours too
        return names

    def sync(self) -> list[dict]:
        """Rebuild the table and the certificates; returns the Ingresses served."""
        names = self.class_names()
        served = [i for i in self.ingresses.list() if ours(i, names)]
        table = build_routes(served)
        contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        for namespace, name in set(table.tls.values()) | set(table.tls_wildcards.values()):
            secret = self.secrets.get_by(namespace, name)
            version = (f"{namespace}/{name}", ((secret or {}).get("metadata") or {}).get("resourceVersion", ""))
            try:
                contexts[version] = self.contexts.get(version) or context_from_secret(secret, namespace, name)
            except SecretError as e:
                for ingress in served:
                    meta = meta_of(ingress)
                    uses = any(t.get("secretName") == name for t in spec_of(ingress).get("tls") or [])
                    if meta.get("namespace") == namespace and uses:
                        self._report(ingress, "InvalidTLSSecret", f"{e}; serving the default certificate")
        self.contexts = contexts  # keyed by Secret and resourceVersion: an unchanged Secret is not loaded again
        self.by_secret = {key: ctx for (key, _), ctx in contexts.items()}
        self.routing.table = table
        by_key = {f"{(i.get('metadata') or {}).get('namespace')}/{(i.get('metadata') or {}).get('name')}": i
                  for i in served}
        for conflict in table.conflicts:
            if conflict.ingress in by_key:
                self._report(by_key[conflict.ingress], "Conflict", conflict.message + "; that path is not served "
                             "from this ingress")
        return served

    def _report(self, ingress: dict, reason: str, message: str) -> None:
        meta = meta_of(ingress)
        seen = (meta.get("uid", ""), reason, message)
        if seen not in self._reported:  # once per Ingress and problem, not on every rebuild
            self._reported.add(seen)
            log.warning("ingress %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
            self.events.record(ingress, "Warning", reason, message, COMPONENT)

    async def write_status(self, served: list[dict]) -> None:
        wanted = [{"ip": ip} for ip in node_addresses(self.nodes.list())]
        for ingress in served:
            current = (status_of(ingress).get("loadBalancer") or {}).get("ingress") or []
            if current == wanted:
                continue
            meta = meta_of(ingress)
            try:
                await self.client.patch(INGRESS, meta.get("namespace"), meta.get("name"),
                                        {"status": {"loadBalancer": {"ingress": wanted}}}, subresource="status")
            except APIStatusError as e:
                if not e.not_found:
                    log.info("status of ingress %s/%s: %s", meta.get("namespace"), meta.get("name"), e)

    async def ensure_class(self) -> None:
        try:
            await self.client.create(INGRESS_CLASS, default_ingress_class())
        except APIStatusError as e:
            if not e.already_exists:
                log.warning("cannot create IngressClass %s: %s", CLASS_NAME, e)

    def _on_change(self, *_objs) -> None:
        self._changed.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        informers = (self.ingresses, self.classes, self.services, self.slices, self.secrets, self.nodes)
        for informer in (self.ingresses, self.classes, self.secrets, self.nodes):
            informer.add_handlers(self._on_change, self._on_change, self._on_change)
        tasks = [asyncio.create_task(i.run(), name=i.rt.plural) for i in informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i in informers))
            await self.ensure_class()
            self._changed.set()
            while True:
                await self._changed.wait()
                await asyncio.sleep(DEBOUNCE)
                self._changed.clear()
                served = self.sync()
                if ready is not None:
                    ready.set()
                await self.write_status(served)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.events.close()
