"""ResourceQuota controller: status.hard mirrors spec.hard and status.used counts what the namespace holds
now (kube-controller-manager's resourcequota-controller). Admission raises status.used as it admits; this
controller recounts from the objects themselves, so deletions give quota back and a charge whose write
failed is undone.
"""

from __future__ import annotations

from kfab.client import rt_of
from kfab.machinery.controller import Controller, split_key
from kfab.objects import quota as q
from kfab.objects.quantity import parse
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.objects.meta import meta_of, spec_of, status_of

RESOURCE_QUOTA = rt_of("ResourceQuota")
POD, SERVICE, CLAIM = rt_of("Pod"), rt_of("Service"), rt_of("PersistentVolumeClaim")
CONFIG_MAP, SECRET = rt_of("ConfigMap"), rt_of("Secret")
# Kinds whose changes are watched (their quota is recounted from the cache); others are listed when counted.
WATCHED = (POD, SERVICE, CLAIM, CONFIG_MAP, SECRET)
BATCH = 0.2  # seconds: many pod events of one namespace make one recount
RESYNC = 60.0  # kube's quota controller also recounts periodically (a charge may belong to a failed write)


def kind_of(resource: str) -> ResourceType | None:
    """The kind a quota resource name counts: requests.cpu -> Pod, count/jobs.batch -> Job, ..."""
    if resource.startswith("count/"):
        plural, _, group = resource[len("count/"):].partition(".")
        return next((rt for rt in REGISTRY.types if rt.plural == plural and rt.group == group), None)
    if q.STORAGE_CLASS_SUFFIX in resource or resource in ("persistentvolumeclaims", "requests.storage"):
        return CLAIM
    if resource.startswith("services"):
        return SERVICE
    bare = {rt.plural: rt for rt in REGISTRY.types if rt.group == ""}
    if resource in bare:
        return bare[resource]
    return POD  # pods, cpu, memory, requests.*, limits.*


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"
    workers = 2

    def setup(self) -> None:
        self.quotas = self.ctx.informer(RESOURCE_QUOTA)
        # Not on status updates: those are admission's charges, and a recount then could miss the object
        # being created (not yet in the caches) and give its quota back too early.
        self.quotas.add_handlers(self.enqueue_obj, self._quota_updated)
        self.watched = {(rt.group, rt.kind): self.ctx.informer(rt) for rt in WATCHED}
        for informer in self.watched.values():
            informer.add_handlers(self._object_changed, lambda old, new: self._object_changed(new),
                                  self._object_changed)

    def _quota_updated(self, old: dict, new: dict) -> None:
        if old.get("spec") != new.get("spec") or not status_of(new).get("hard"):
            self.enqueue_obj(new)

    def _object_changed(self, obj: dict) -> None:
        namespace = meta_of(obj).get("namespace")
        for quota in self.quotas.list(namespace) if namespace else ():
            self.queue.add_after(f"{namespace}/{quota['metadata']['name']}", BATCH)

    async def _objects(self, rt: ResourceType, namespace: str) -> list[dict]:
        informer = self.watched.get((rt.group, rt.kind))
        if informer is not None:
            return informer.list(namespace)
        return (await self.client.list(rt, namespace))["items"]

    async def reconcile(self, key: str) -> float | None:
        quota = self.quotas.get(key)
        if quota is None:
            return None
        namespace, _ = split_key(key)
        hard = spec_of(quota).get("hard") or {}
        by_kind: dict[str, list[str]] = {}
        kinds: dict[str, ResourceType] = {}
        for resource in hard:
            rt = kind_of(resource)
            if rt is not None:
                by_kind.setdefault(rt.api_version + "/" + rt.kind, []).append(resource)
                kinds[rt.api_version + "/" + rt.kind] = rt
        used: dict = {}
        for kind_key, resources in by_kind.items():
            rt = kinds[kind_key]
            for obj in await self._objects(rt, namespace):
                if meta_of(obj).get("deletionTimestamp") and rt.kind != "Pod":
                    continue
                if not q.selects(quota, rt, obj):
                    continue
                for resource, amount in q.usage(rt, obj).items():
                    if resource in resources:
                        q.add(used, resource, amount)
        for resource in hard:
            used.setdefault(resource, parse("0"))
        status = {"hard": dict(hard), "used": q.as_strings(used)}
        await self.write_status(self.quotas, quota, status)
        return RESYNC
