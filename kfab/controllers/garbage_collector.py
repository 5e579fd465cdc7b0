"""Garbage collector: ownerReferences cascade, as kube-controller-manager's garbagecollector.

- Background: an object whose owners are all gone is deleted (the owner was deleted at once).
- Foreground: an owner marked for deletion with the `foregroundDeletion` finalizer first has its dependents
  deleted (foreground as well, so whole chains go bottom-up); the finalizer is removed - and the owner goes -
  once no dependent with `blockOwnerDeletion: true` is left.
- Orphan: an owner with the `orphan` finalizer has its ownerReference removed from every dependent, then the
  finalizer removed.

"Owner gone" is decided by the API, not the cache: an owner missing from the cache is looked up with a GET
(uid compared) before anything is deleted, because informers of different kinds run at different speeds.
"""

from __future__ import annotations

from kfab.client import APIStatusError
from kfab.machinery.controller import Controller, by_owner_uid, key_of
from kfab.machinery.informer import Informer
from kfab.objects import conversion
from kfab.objects.crd import is_established, served_types
from kfab.objects.registry import REGISTRY, ResourceType

CRD = REGISTRY.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Kinds not watched: Events are high-volume and never own anything; reviews are not stored.
SKIPPED = {("", "Event"), ("authorization.k8s.io", "SelfSubjectAccessReview")}


def _rt_key(rt: ResourceType) -> str:
    return f"{rt.group}/{rt.plural}"


def _finalizers(obj: dict) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


class GarbageCollector(Controller):
    name = "garbage-collector-controller"
    workers = 4

    def setup(self) -> None:
        self.watched: dict[str, tuple[ResourceType, Informer]] = {}
        self.custom_kinds: dict[tuple[str, str], ResourceType] = {}  # (apiVersion, kind) of established CRDs
        for rt in REGISTRY.types:
            if (rt.group, rt.kind) in SKIPPED or "watch" not in rt.verbs \
                    or conversion.is_view(rt.group, rt.kind, rt.api_version):
                continue
            self._watch(rt)
        # Custom resources own and are owned like any object: each established CRD's kind is watched too.
        crds = self.ctx.informer(CRD)
        crds.add_handlers(self._crd_changed, lambda old, new: self._crd_changed(new))

    def _watch(self, rt: ResourceType) -> None:
        informer = self.ctx.informer(rt)
        informer.add_index("owner-uid", by_owner_uid)
        self.watched[_rt_key(rt)] = (rt, informer)
        informer.add_handlers(self._added(rt), self._updated(rt), self._deleted(rt))

    def _crd_changed(self, crd: dict) -> None:
        if not is_established(crd):
            return
        served = served_types(crd)
        for rt in served:
            self.custom_kinds[(rt.api_version, rt.kind)] = rt
        if served and _rt_key(served[0]) not in self.watched:
            self._watch(served[0])
            self.ctx.informers.start()

    # --- events -> keys -------------------------------------------------------------------------------

    def _enqueue(self, rt: ResourceType, obj: dict) -> None:
        self.queue.add(f"{_rt_key(rt)}|{key_of(obj)}")

    def _enqueue_dependents(self, uid: str) -> None:
        for rt, informer in self.watched.values():
            for dep in informer.by_index("owner-uid", uid):
                self._enqueue(rt, dep)

    def _enqueue_owners(self, obj: dict) -> None:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            owner = self._find_cached(ref, (obj.get("metadata") or {}).get("namespace"))
            if owner is not None:
                self._enqueue(*owner)

    def _interesting(self, obj: dict) -> bool:
        meta = obj.get("metadata") or {}
        return bool(meta.get("ownerReferences")) or (
            bool(meta.get("deletionTimestamp")) and any(f in (FOREGROUND, ORPHAN) for f in _finalizers(obj)))

    def _added(self, rt: ResourceType):
        def on_add(obj: dict) -> None:
            if self._interesting(obj):
                self._enqueue(rt, obj)
        return on_add

    def _updated(self, rt: ResourceType):
        def on_update(old: dict, new: dict) -> None:
            om, nm = old.get("metadata") or {}, new.get("metadata") or {}
            if (om.get("ownerReferences") != nm.get("ownerReferences") or om.get("finalizers") != nm.get("finalizers")
                    or om.get("deletionTimestamp") != nm.get("deletionTimestamp") or old is new):
                if self._interesting(new):
                    self._enqueue(rt, new)
                if nm.get("deletionTimestamp") and nm.get("uid"):
                    self._enqueue_dependents(nm["uid"])
                    self._enqueue_owners(new)
        return on_update

    def _deleted(self, rt: ResourceType):
        def on_delete(obj: dict) -> None:
            uid = (obj.get("metadata") or {}).get("uid")
            if uid:
                self._enqueue_dependents(uid)
            self._enqueue_owners(obj)  # a foreground owner may be waiting for exactly this one
        return on_delete

    # --- lookups ------------------------------------------------------------------------------------

    def _owner_rt(self, ref: dict) -> ResourceType | None:
        key = (ref.get("apiVersion", ""), ref.get("kind", ""))
        return REGISTRY.by_kind(*key) or self.custom_kinds.get(key)

    def _find_cached(self, ref: dict, namespace: str | None) -> tuple[ResourceType, dict] | None:
        rt = self._owner_rt(ref)
        if rt is None or _rt_key(rt) not in self.watched:
            return None
        obj = self.watched[_rt_key(rt)][1].get_by(namespace if rt.namespaced else None, ref.get("name", ""))
        if obj is not None and obj["metadata"].get("uid") == ref.get("uid"):
            return rt, obj
        return None

    async def _owner_exists(self, ref: dict, namespace: str | None) -> bool:
        if self._find_cached(ref, namespace) is not None:
            return True
        rt = self._owner_rt(ref)
        if rt is None:
            return True  # a kind this API does not serve: never collect on a guess
        try:
            live = await self.client.get(rt, namespace if rt.namespaced else None, ref.get("name", ""))
        except APIStatusError as e:
            if e.not_found:
                return False
            raise
        return live["metadata"].get("uid") == ref.get("uid")

    def _dependents(self, uid: str) -> list[tuple[ResourceType, dict]]:
        return [(rt, dep) for rt, informer in self.watched.values() for dep in informer.by_index("owner-uid", uid)]

    # --- reconcile ------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        rt_key, _, obj_key = key.partition("|")
        if rt_key not in self.watched:
            return None
        rt, informer = self.watched[rt_key]
        obj = informer.get(obj_key)
        if obj is None:
            return None
        meta = obj["metadata"]
        finalizers = _finalizers(obj)
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            return await self._orphan_dependents(rt, informer, obj)
        if meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            return await self._delete_dependents_first(rt, informer, obj)
        if meta.get("ownerReferences") and not meta.get("deletionTimestamp"):
            await self._collect_if_dangling(rt, informer, obj)
        return None

    async def _orphan_dependents(self, rt: ResourceType, informer: Informer, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for dep_rt, dep in self._dependents(uid):
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            try:
                patched = await self.client.patch(dep_rt, dep["metadata"].get("namespace"), dep["metadata"]["name"], {
                    "metadata": {"ownerReferences": refs or None,
                                 "resourceVersion": dep["metadata"]["resourceVersion"]}})
            except APIStatusError as e:
                if e.not_found:
                    continue
                raise
            self.watched[_rt_key(dep_rt)][1].remember_write(patched)
        await self._remove_finalizer(rt, informer, owner, ORPHAN)
        self.event(owner, "Normal", "OrphanedDependents", "dependents orphaned before deletion")

    async def _delete_dependents_first(self, rt: ResourceType, informer: Informer, owner: dict) -> float | None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dep_rt, dep in self._dependents(uid):
            ref = next((r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if dep["metadata"].get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(dep_rt, dep["metadata"].get("namespace"), dep["metadata"]["name"],
                                         propagation_policy="Foreground", uid=dep["metadata"]["uid"])
            except APIStatusError as e:
                if not e.not_found:
                    raise
        if blocking:
            return 5.0  # dependents' deletion events wake us earlier; this is the safety net
        await self._remove_finalizer(rt, informer, owner, FOREGROUND)
        return None

    async def _collect_if_dangling(self, rt: ResourceType, informer: Informer, obj: dict) -> None:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        missing = [r for r in refs if not await self._owner_exists(r, meta.get("namespace"))]
        if not missing:
            return
        try:
            if len(missing) == len(refs):
                await self.client.delete(rt, meta.get("namespace"), meta["name"], propagation_policy="Background",
                                         uid=meta["uid"])
                return
            keep = [r for r in refs if r not in missing]
            patched = await self.client.patch(rt, meta.get("namespace"), meta["name"], {
                "metadata": {"ownerReferences": keep, "resourceVersion": meta["resourceVersion"]}})
            informer.remember_write(patched)
        except APIStatusError as e:
            if not (e.not_found or e.conflict or (e.code == 409 and "recondition" in e.message)):
                raise

    async def _remove_finalizer(self, rt: ResourceType, informer: Informer, obj: dict, finalizer: str) -> None:
        meta = obj["metadata"]
        left = [f for f in _finalizers(obj) if f != finalizer]
        try:
            patched = await self.client.patch(rt, meta.get("namespace"), meta["name"], {
                "metadata": {"finalizers": left or None, "resourceVersion": meta["resourceVersion"]}})
        except APIStatusError as e:
            if e.not_found:
                return
            raise
        if patched.get("metadata", {}).get("uid") == meta["uid"] and patched.get("kind") == obj.get("kind"):
            informer.remember_write(patched)
