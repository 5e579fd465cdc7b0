"""The LimitRanger admission plugin: a new Pod's containers get the namespace's default limits and requests
(noted in the kubernetes.io/limit-ranger annotation), then Pods and PersistentVolumeClaims that break a
LimitRange's min/max/maxLimitRequestRatio are refused with kube's messages (403)."""

from __future__ import annotations

import json

from kfab.objects import limitrange
from kfab.objects.defaults.pod import qos_class
from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.store.base import Store
from kfab.objects.meta import meta_of, spec_of

LIMIT_RANGE = REGISTRY.by_kind("v1", "LimitRange")


async def limit_ranges(store: Store, namespace: str) -> list[dict]:
    kvs, _ = await store.list(LIMIT_RANGE.store_prefix(namespace))
    return [json.loads(kv.value) for kv in kvs]


def applies(rt: ResourceType) -> bool:
    return rt.group == "" and rt.kind in ("Pod", "PersistentVolumeClaim")


def default_pod(pod: dict, ranges: list[dict]) -> None:
    note = limitrange.default_pod(pod, ranges)
    if note:
        pod.setdefault("metadata", {}).setdefault("annotations", {})[limitrange.ANNOTATION] = note
        pod.setdefault("status", {})["qosClass"] = qos_class(spec_of(pod))


def validate(rt: ResourceType, obj: dict, ranges: list[dict]) -> None:
    errors = (limitrange.pod_violations(obj, ranges) if rt.kind == "Pod"
              else limitrange.claim_violations(obj, ranges))
    if not errors:
        return
    name = meta_of(obj).get("name") or meta_of(obj).get("generateName") or ""
    # utilerrors.Aggregate: one error as it is, several in brackets.
    detail = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    raise APIError(403, "Forbidden", f'{rt.plural} "{name}" is forbidden: {detail}', name=name, kind=rt.plural)
