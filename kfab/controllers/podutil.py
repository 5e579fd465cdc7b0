"""Pod facts the workload controllers share: active, ready, available, the order to delete in, pod creation."""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Awaitable, Callable, Iterable

from kfab.machinery.controller import controller_ref, owner_ref, parse_time
from kfab.objects.meta import meta_of, spec_of, status_of

SLOW_START_INITIAL_BATCH = 1  # as kube-controller-manager: 1, 2, 4, ... so a failing template fails fast
BURST_REPLICAS = 500          # most pods one reconcile creates or deletes


def orphan_namespace(obj: dict) -> list[str]:
    """Index function: objects no controller owns, by namespace (the only ones a controller may adopt)."""
    return [] if controller_ref(obj) else [meta_of(obj).get("namespace", "")]


def is_active(pod: dict) -> bool:
    return (not meta_of(pod).get("deletionTimestamp")
            and status_of(pod).get("phase") not in ("Succeeded", "Failed"))


def ready_condition(pod: dict) -> dict | None:
    for cond in status_of(pod).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: dict) -> bool:
    cond = ready_condition(pod)
    return bool(cond and cond.get("status") == "True")


def available_in(pod: dict, min_ready_seconds: int, now: datetime.datetime | None = None) -> float | None:
    """0 when the pod is available now, seconds until it will be (ready, waiting out minReadySeconds), or None."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time(ready_condition(pod).get("lastTransitionTime"))
    if since is None:
        return 0.0
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (since + datetime.timedelta(seconds=min_ready_seconds) - now).total_seconds())


def is_available(pod: dict, min_ready_seconds: int) -> bool:
    return available_in(pod, min_ready_seconds) == 0.0


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_order(pod: dict) -> tuple:
    """Sort key: the pods to delete first come first (kube's ActivePodsWithRanks, simplified):
    unscheduled < scheduled, Pending < Unknown < Running, not ready < ready, ready more recently first,
    more restarts first, newer first."""
    spec, status, meta = spec_of(pod), status_of(pod), meta_of(pod)
    cond = ready_condition(pod) or {}
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    ready_since = cond.get("lastTransitionTime") or "" if is_ready(pod) else ""
    return (bool(spec.get("nodeName")), _PHASE_RANK.get(status.get("phase"), 0), is_ready(pod),
            _negate(ready_since), -restarts, _negate(meta.get("creationTimestamp") or ""))


def _negate(timestamp: str) -> tuple:
    # Newer first in an ascending sort: compare the negated characters of the RFC 3339 string.
    return tuple(-ord(c) for c in timestamp)


def pod_from_template(template: dict, owner: dict, name_prefix: str, extra_labels: dict | None = None) -> dict:
    meta = copy.deepcopy(meta_of(template))
    labels = dict(meta.get("labels") or {}, **(extra_labels or {}))
    pod_meta = {"generateName": name_prefix, "namespace": owner["metadata"]["namespace"], "labels": labels,
                "ownerReferences": [owner_ref(owner)]}
    if meta.get("annotations"):
        pod_meta["annotations"] = meta["annotations"]
    if meta.get("finalizers"):
        pod_meta["finalizers"] = meta["finalizers"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": copy.deepcopy(spec_of(template))}


async def slow_start(count: int, create_one: Callable[[], Awaitable[None]], initial: int = SLOW_START_INITIAL_BATCH
                     ) -> tuple[int, BaseException | None]:
    """Run create_one() `count` times in batches of 1, 2, 4, ...; stop after a batch with a failure.
    Returns (successes, first error)."""
    done, batch = 0, initial
    while done < count:
        n = min(batch, count - done)
        results = await asyncio.gather(*(create_one() for _ in range(n)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done += n - len(errors)
        if errors:
            return done, errors[0]
        batch *= 2
    return done, None


async def gather_limited(items: Iterable, action: Callable, limit: int = 64) -> list:
    sem = asyncio.Semaphore(limit)

    async def one(item):
        async with sem:
            return await action(item)
    return await asyncio.gather(*(one(i) for i in items), return_exceptions=True)
