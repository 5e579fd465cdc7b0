"""Serving custom resources: every API server keeps its registry in step with the established
CustomResourceDefinitions in the store, as apiextensions-apiserver's crdHandler does.

A CRD's group/version/resource is served (routing, discovery, OpenAPI) from the moment its Established
condition is True until the CRD is gone from the store; the conditions themselves are written by the
CustomResourceDefinition controller (kfab.controllers.crd). The store watch makes a new CRD servable within
milliseconds; a request for a resource this server does not know yet re-reads the CRDs once before its 404,
so a client that saw Established never races this watch.
"""

from __future__ import annotations

import asyncio
import json
import logging

from kfab.api.crd_status import CustomResourceDefinitionStatus
from kfab.objects.crd import is_established, served_types
from kfab.objects.registry import ResourceRegistry
from kfab.store.base import Store
from kfab.objects.meta import spec_of

log = logging.getLogger(__name__)

_CRD_GROUP, _CRD_PLURAL = "apiextensions.k8s.io", "customresourcedefinitions"


class CustomResourceServing:
    def __init__(self, store: Store, watch_source, registry: ResourceRegistry):
        self.store = store
        self.watch_source = watch_source
        self.registry = registry
        self.prefix = registry.by_path(_CRD_GROUP, "v1", _CRD_PLURAL).store_prefix()
        self._served: dict[str, tuple[str, str]] = {}  # CRD name -> (group, plural) it serves
        self._crds: dict[str, dict] = {}  # CRD name -> the CRD as last read
        self._lock = asyncio.Lock()
        self.status = CustomResourceDefinitionStatus(store)
        self._rechecks: dict[str, asyncio.Task] = {}

    async def _reconcile(self, key: str, crd: dict, revision: int) -> None:
        """Serve the CRD as it is, then let its status catch up (the status write comes back as an event)."""
        self.apply(crd)
        builtin = [rt for rt in self.registry.types if rt.custom is None]
        others = [c for n, c in self._crds.items() if n != crd["metadata"]["name"]]
        try:
            waiting = await self.status.reconcile(key, crd, revision, others, builtin)
        except Exception as e:  # noqa: BLE001 - one CRD's trouble must not stop the others
            log.warning("CustomResourceDefinition %s: %s", crd["metadata"]["name"], e)
            waiting = True
        name = crd["metadata"]["name"]
        if waiting and name not in self._rechecks:
            self._rechecks[name] = asyncio.create_task(self._recheck(key, name))

    async def _recheck(self, key: str, name: str) -> None:
        # Objects with finalizers of their own hold a CRD's deletion: look again until they are gone.
        await asyncio.sleep(1)
        self._rechecks.pop(name, None)
        try:
            kv = await self.store.get(key)
        except Exception as e:  # noqa: BLE001 - the store is going away with the server, or briefly unreachable
            log.info("CustomResourceDefinition %s: looking again failed: %s", name, e)
            return
        if kv is not None:
            await self._reconcile(key, json.loads(kv.value), kv.mod_revision)

    def apply(self, crd: dict) -> None:
        """Serve what `crd` says (or stop serving, if it is not established)."""
        name = crd["metadata"]["name"]
        self._crds[name] = crd
        spec = spec_of(crd)
        served = served_types(crd) if is_established(crd) else []
        previous = self._served.get(name)
        target = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        if previous and previous != target:
            self.registry.replace_group_resource(*previous, [])
        current = [rt for rt in self.registry.types if (rt.group, rt.plural) == target]
        if _served_as(current) != _served_as(served):
            self.registry.replace_group_resource(*target, served)
        if served:
            self._served[name] = target
        else:
            self._served.pop(name, None)

    def forget(self, name: str) -> None:
        self._crds.pop(name, None)
        target = self._served.pop(name, None)
        if target:
            self.registry.replace_group_resource(*target, [])

    async def refresh(self, reconcile: bool = False) -> int:
        """Read every CRD from the store and serve exactly those; returns the store revision read at."""
        async with self._lock:
            kvs, revision = await self.store.list(self.prefix)
            crds = {kv.key: (json.loads(kv.value), kv.mod_revision) for kv in kvs}
            for gone in (set(self._served) | set(self._crds)) - {c["metadata"]["name"] for c, _ in crds.values()}:
                self.forget(gone)
            for crd, _ in crds.values():
                self.apply(crd)
        if reconcile:
            for key, (crd, rev) in crds.items():
                await self._reconcile(key, crd, rev)
        return revision

    async def run(self) -> None:
        """Follow the CRDs in the store for as long as the server runs (re-listing after a broken watch)."""
        while True:
            try:
                revision = await self.refresh(reconcile=True)
                events = self.watch_source(self.prefix, revision)
                try:
                    async for event in events:
                        name = event.kv.key.rsplit("/", 1)[1]
                        if event.type == "DELETE":
                            self.forget(name)
                        else:
                            await self._reconcile(event.kv.key, json.loads(event.kv.value), event.kv.mod_revision)
                finally:
                    if hasattr(events, "aclose"):
                        await events.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a broken watch is re-listed, never fatal for the server
                log.warning("watching CustomResourceDefinitions failed, re-listing: %s", e)
                await asyncio.sleep(1)


def _served_as(types: list) -> list:
    # CustomKind compares without its schema (a dict): a changed schema must be served too
    return [(rt, rt.custom, rt.custom.schema) for rt in types]
