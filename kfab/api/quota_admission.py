"""The ResourceQuota admission plugin (plugin/pkg/admission/resourcequota): an object is created only if
every quota of its namespace that tracks it stays within `spec.hard`, and the quota's status.used is raised
at once (a compare-and-swap on the quota, so two creations racing for the last unit cannot both win).
The resourcequota controller recounts status.used from what exists, undoing charges of writes that failed.
"""

from __future__ import annotations

import json

from kfab.objects import quota as q
from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.store.base import RevisionConflict, Store
from kfab.objects.meta import meta_of, spec_of, status_of

RESOURCE_QUOTA = REGISTRY.by_kind("v1", "ResourceQuota")
CHARGE_ATTEMPTS = 10


def _forbidden(rt: ResourceType, name: str, message: str) -> APIError:
    resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return APIError(403, "Forbidden", f'{resource} "{name}" is forbidden: {message}', name=name,
                    group=rt.group or None, kind=rt.plural)


async def admit(store: Store, rt: ResourceType, obj: dict, namespace: str, dry_run: bool,
                old: dict | None = None) -> None:
    """Refuse (403, kube's words) or charge every quota of the namespace that tracks obj; for an update (`old`
    given) only what it adds counts, e.g. a claim grown or a Service turned into a NodePort."""
    if not rt.namespaced or not namespace:
        return
    name = meta_of(obj).get("name") or meta_of(obj).get("generateName") or ""
    consumed = None
    if old is not None:
        consumed = q.increase(q.usage(rt, obj), q.usage(rt, old))
        if not consumed:
            return
    kvs, _ = await store.list(RESOURCE_QUOTA.store_prefix(namespace))
    if not kvs:
        return  # most namespaces have no quota: a new object's usage need not be counted
    if consumed is None:
        consumed = q.usage(rt, obj)
    for kv in kvs:
        quota = json.loads(kv.value)
        if not q.selects(quota, rt, obj):
            continue
        hard = spec_of(quota).get("hard") or {}
        quota_name = quota["metadata"]["name"]
        if rt.group == "" and rt.kind == "Pod" and old is None and not q.pod_is_terminal(obj):
            missing = q.missing_compute(hard, obj)
            if missing:
                raise _forbidden(rt, name, f"failed quota: {quota_name}: must specify {missing}")
        requested = {r: amount for r, amount in consumed.items() if r in hard}
        if not requested:
            continue
        await _charge(store, kv.key, rt, name, requested, dry_run)


async def _charge(store: Store, key: str, rt: ResourceType, name: str, requested: dict, dry_run: bool) -> None:
    for _ in range(CHARGE_ATTEMPTS):
        kv = await store.get(key)
        if kv is None:
            return  # deleted meanwhile: it limits nothing any more
        quota = json.loads(kv.value)
        status = status_of(quota)
        hard, used = q.parse_list(spec_of(quota).get("hard")), q.parse_list(status.get("used"))
        unknown = [r for r in requested if r not in (status.get("hard") or {}) or r not in used]
        if unknown:
            raise _forbidden(rt, name, f"status unknown for quota: {quota['metadata']['name']}, resources: "
                             f"{','.join(sorted(unknown))}")
        new_used = dict(used)
        for resource, amount in requested.items():
            q.add(new_used, resource, amount)
        exceeded = sorted(r for r in requested if r in hard and new_used[r].value > hard[r].value)
        if exceeded:
            raise _forbidden(rt, name, f"exceeded quota: {quota['metadata']['name']}, "
                             f"requested: {q.pretty({r: requested[r] for r in exceeded})}, "
                             f"used: {q.pretty({r: used[r] for r in exceeded})}, "
                             f"limited: {q.pretty({r: hard[r] for r in exceeded})}")
        if dry_run:
            return
        status["used"] = dict(status.get("used") or {}, **q.as_strings({r: new_used[r] for r in requested}))
        quota["status"] = status
        try:
            await store.update(key, json.dumps(quota, separators=(",", ":")).encode(), kv.mod_revision)
            return
        except RevisionConflict:
            continue
    raise APIError(409, "Conflict", f"the quota of namespace for {rt.plural} \"{name}\" changed too often while "
                   "being charged; try again")
