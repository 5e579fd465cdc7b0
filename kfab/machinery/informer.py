"""Informers: a local cache of one resource kind, kept current by list + watch, that calls event handlers.

As client-go's shared informer: list (remember the collection's resourceVersion), then watch from it;
a broken watch resumes from the last resourceVersion seen; 410 Expired means list again (and the handlers
see the differences as add/update/delete). Every `resync` seconds the handlers see update(obj, obj) for every
cached object, so a controller that missed something catches up. Indexes answer "which pods does this
ReplicaSet own" without scanning the cache.

Controllers read from the cache, never from the API, and may `remember_write()` an object they just wrote so
their next reconcile sees it even before the watch event arrives (client-go's mutation cache).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Callable, Iterable

import aiohttp

from kfab.client import APIStatusError, Client, WatchExpired
from kfab.objects.registry import ResourceType
from kfab.objects.meta import meta_of

log = logging.getLogger(__name__)

Handler = Callable[..., None]
IndexFunc = Callable[[dict], Iterable[str]]


def key_of(obj: dict) -> str:
    """"namespace/name" for namespaced objects, "name" for cluster-scoped ones (client-go's MetaNamespaceKey)."""
    meta = meta_of(obj)
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def without_managed_fields(obj: dict) -> dict:
    """The object as the cache keeps it: no metadata.managedFields, as kube-controller-manager's and
    kube-scheduler's informers strip it (TransformStripManagedFields). No controller reads field ownership, it
    is often the larger part of a pod, and an update that omits it leaves the stored ownership as it was."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _rv(obj: dict) -> int:
    try:
        return int(meta_of(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def by_namespace(obj: dict) -> list[str]:
    ns = meta_of(obj).get("namespace")
    return [ns] if ns else []


def by_owner_uid(obj: dict) -> list[str]:
    return [ref["uid"] for ref in meta_of(obj).get("ownerReferences") or [] if ref.get("uid")]


def by_controller_uid(obj: dict) -> list[str]:
    return [ref["uid"] for ref in meta_of(obj).get("ownerReferences") or []
            if ref.get("controller") and ref.get("uid")]


class Informer:
    def __init__(self, client: Client, rt: ResourceType, resync: float = 0.0, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None):
        self.client, self.rt = client, rt
        self.resync, self.namespace = resync, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.synced = asyncio.Event()
        self.resource_version = "0"
        self.version = 0  # bumped on every cache change: lets readers memoise what they derive from it
        self._cache: dict[str, dict] = {}
        self._tombstones: dict[str, int] = {}  # key -> rv of a delete we did ourselves (ignore older events)
        self._indexers: dict[str, IndexFunc] = {"namespace": by_namespace}
        self._indices: dict[str, dict[str, set[str]]] = {"namespace": {}}
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []

    # --- registration -------------------------------------------------------------------------------

    def add_handlers(self, on_add: Handler | None = None, on_update: Handler | None = None,
                     on_delete: Handler | None = None) -> None:
        """on_add(obj), on_update(old, new), on_delete(obj); called in the event loop, must not block."""
        self._handlers.append((on_add, on_update, on_delete))
        for obj in list(self._cache.values()):  # a late handler sees what is already there
            if on_add:
                on_add(obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        if name in self._indexers:
            return
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self._cache.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    # --- reading ------------------------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        return self._cache.get(key)

    def get_by(self, namespace: str | None, name: str) -> dict | None:
        return self._cache.get(f"{namespace}/{name}" if namespace and self.rt.namespaced else name)

    def list(self, namespace: str | None = None) -> list[dict]:
        if namespace is None:
            return list(self._cache.values())
        return self.by_index("namespace", namespace)

    def keys(self) -> list[str]:
        return list(self._cache)

    def by_index(self, name: str, value: str) -> list[dict]:
        return [self._cache[k] for k in self._indices[name].get(value, ()) if k in self._cache]

    # --- writing the cache --------------------------------------------------------------------------

    def _index(self, key: str, old: dict | None, new: dict | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            if old is not None:
                for value in func(old):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            if new is not None:
                for value in func(new):
                    index.setdefault(value, set()).add(key)

    def _put(self, obj: dict) -> dict | None:
        key = key_of(obj)
        old = self._cache.get(key)
        self.version += 1
        self._index(key, old, obj)
        self._cache[key] = obj
        return old

    def _pop(self, key: str) -> dict | None:
        old = self._cache.pop(key, None)
        if old is not None:
            self.version += 1
            self._index(key, old, None)
        return old

    def remember_write(self, obj: dict) -> None:
        """Put an object this process just wrote into the cache, unless the cache already has a newer one."""
        key = key_of(obj)
        cached = self._cache.get(key)
        if cached is None or _rv(obj) > _rv(cached):
            self._tombstones.pop(key, None)
            self._put(without_managed_fields(obj))

    def remember_delete(self, obj: dict) -> None:
        """Drop an object this process just deleted; events older than it do not bring it back."""
        key = key_of(obj)
        self._pop(key)
        self._tombstones[key] = _rv(obj)

    # --- dispatch -----------------------------------------------------------------------------------

    def _dispatch(self, kind: str, old: dict | None, new: dict | None) -> None:
        for on_add, on_update, on_delete in self._handlers:
            try:
                if kind == "add" and on_add:
                    on_add(new)
                elif kind == "update" and on_update:
                    on_update(old, new)
                elif kind == "delete" and on_delete:
                    on_delete(old)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the informer
                log.exception("%s handler failed", self.rt.plural)

    def _apply_event(self, kind: str, obj: dict) -> None:
        obj = without_managed_fields(obj)
        key = key_of(obj)
        rv = _rv(obj)
        if kind == "DELETED":
            self._tombstones.pop(key, None)
            old = self._pop(key)
            self._dispatch("delete", old or obj, None)
            return
        tomb = self._tombstones.get(key)
        if tomb is not None and rv <= tomb:
            return
        cached = self._cache.get(key)
        if cached is not None and rv < _rv(cached):
            return  # our own write got here first; this older event would roll the cache back
        self._put(obj)
        if cached is None:
            self._dispatch("add", None, obj)
        else:
            self._dispatch("update", cached, obj)

    def _replace(self, items: list[dict]) -> None:
        """After a (re)list: the cache becomes exactly `items`; handlers see the differences."""
        fresh = {key_of(o): without_managed_fields(o) for o in items}
        for key in [k for k in self._cache if k not in fresh]:
            old = self._pop(key)
            self._dispatch("delete", old, None)
        self._tombstones.clear()
        for obj in fresh.values():
            old = self._put(obj)
            if old is None:
                self._dispatch("add", None, obj)
            elif _rv(old) != _rv(obj):
                self._dispatch("update", old, obj)

    # --- running ------------------------------------------------------------------------------------

    async def _list(self) -> None:
        listed = await self.client.list(self.rt, self.namespace, self.label_selector, self.field_selector)
        for item in listed["items"]:
            item.setdefault("apiVersion", self.rt.api_version)
            item.setdefault("kind", self.rt.kind)
        self.resource_version = meta_of(listed).get("resourceVersion") or "0"
        self._replace(listed["items"])
        self.synced.set()

    async def _watch(self) -> None:
        async for kind, obj in self.client.watch(self.rt, self.namespace, self.resource_version,
                                                 self.label_selector, self.field_selector):
            rv = meta_of(obj).get("resourceVersion")
            if kind != "BOOKMARK":
                self._apply_event(kind, obj)
            if rv:
                self.resource_version = rv

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync * random.uniform(0.9, 1.1))
            for obj in list(self._cache.values()):
                self._dispatch("update", obj, obj)

    async def run(self) -> None:
        """List, then watch forever (resuming, relisting on 410); cancel to stop."""
        resync = asyncio.create_task(self._resync_loop()) if self.resync > 0 else None
        delay = 0.1
        need_list = True
        try:
            while True:
                try:
                    if need_list:
                        await self._list()
                        need_list = False
                    await self._watch()
                    delay = 0.1
                except WatchExpired:
                    log.info("%s watch expired at %s: listing again", self.rt.plural, self.resource_version)
                    need_list = True
                except (aiohttp.ClientError, asyncio.TimeoutError, APIStatusError, OSError, ValueError) as e:
                    log.info("%s list/watch failed (%s); retrying in %.1fs", self.rt.plural, e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            if resync is not None:
                resync.cancel()


class InformerFactory:
    """One informer per kind, shared by every controller in a process (client-go's SharedInformerFactory)."""

    def __init__(self, client: Client, resync: float = 0.0):
        self.client, self.resync = client, resync
        self._informers: dict[ResourceType, Informer] = {}
        self._tasks: dict[ResourceType, asyncio.Task] = {}

    def informer(self, rt: ResourceType) -> Informer:
        if rt not in self._informers:
            self._informers[rt] = Informer(self.client, rt, self.resync)
        return self._informers[rt]

    def start(self) -> None:
        for rt, informer in self._informers.items():
            if rt not in self._tasks:
                self._tasks[rt] = asyncio.create_task(informer.run(), name=f"informer-{rt.plural}")

    async def wait_synced(self) -> None:
        """Until every started informer has listed once. As client-go's WaitForCacheSync, informers asked for but
        not started are not waited for: in `kfab server` the scheduler shares this factory with the controllers,
        and a controller-manager that failed between asking for informers and starting them must not hold the
        scheduler up for good."""
        await asyncio.gather(*(self._informers[rt].synced.wait() for rt in list(self._tasks)))

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
