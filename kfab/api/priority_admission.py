"""The Priority admission plugin (plugin/pkg/admission/priority): a new Pod's spec.priority and
preemptionPolicy come from its PriorityClass (or the cluster's globalDefault one, else 0); an unknown class
is refused; only one PriorityClass may be the global default."""

from __future__ import annotations

import json

from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY
from kfab.store.base import Store
from kfab.objects.meta import meta_of

PRIORITY_CLASS = REGISTRY.by_kind("scheduling.k8s.io/v1", "PriorityClass")
DEFAULT_PREEMPTION = "PreemptLowerPriority"


async def _classes(store: Store) -> list[dict]:
    kvs, _ = await store.list(PRIORITY_CLASS.store_prefix())
    return [json.loads(kv.value) for kv in kvs]


async def admit_pod(store: Store, pod: dict, given_spec: dict) -> None:
    """Set priority and preemptionPolicy of a new pod; `given_spec` is the spec as the client sent it."""
    spec = pod.setdefault("spec", {})
    pod_name = meta_of(pod).get("name") or meta_of(pod).get("generateName") or ""
    class_name = spec.get("priorityClassName")
    if class_name:
        kv = await store.get(PRIORITY_CLASS.store_key(None, class_name))
        if kv is None:
            raise _forbidden(pod_name, f"no PriorityClass with name {class_name} was found")
        klass = json.loads(kv.value)
    else:
        klass = next((c for c in await _classes(store) if c.get("globalDefault")), None)
        if klass is not None:
            spec["priorityClassName"] = klass["metadata"]["name"]
    priority = int(klass.get("value") or 0) if klass else 0
    policy = (klass or {}).get("preemptionPolicy") or DEFAULT_PREEMPTION
    if given_spec.get("priority") is not None and given_spec["priority"] != priority:
        raise _forbidden(pod_name, f"the integer value of priority ({given_spec['priority']}) must not be provided "
                         f"in pod spec; priority admission controller computed {priority} from the given "
                         "PriorityClass name")
    if klass is not None and given_spec.get("preemptionPolicy") not in (None, policy):
        raise _forbidden(pod_name, f"the string value of PreemptionPolicy ({given_spec['preemptionPolicy']}) must "
                         f"not be provided in pod spec; priority admission controller computed {policy} from the "
                         "given PriorityClass name")
    spec["priority"] = priority
    spec["preemptionPolicy"] = policy


async def admit_priority_class(store: Store, klass: dict) -> None:
    """Only one PriorityClass may set globalDefault."""
    if not klass.get("globalDefault"):
        return
    name = klass["metadata"]["name"]
    for other in await _classes(store):
        if other.get("globalDefault") and other["metadata"]["name"] != name:
            raise APIError(403, "Forbidden", f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: PriorityClass '
                           f'{other["metadata"]["name"]} is already marked as default. Only one default can exist',
                           name=name, group="scheduling.k8s.io", kind="priorityclasses")


def _forbidden(pod_name: str, message: str) -> APIError:
    return APIError(403, "Forbidden", f'pods "{pod_name}" is forbidden: {message}', name=pod_name, kind="pods")
