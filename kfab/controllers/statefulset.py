"""StatefulSet controller: pods with stable identities `<set>-<ordinal>`, started and stopped in order.

- OrderedReady (default): create ordinals 0..N-1 one at a time, each Running and Ready before the next;
  scale down from the highest ordinal, one at a time, only while all others are healthy. Parallel: no waiting.
- volumeClaimTemplates: each ordinal's PVCs `<template>-<set>-<ordinal>` are created before its pod and never
  deleted by this controller (a replaced or re-created pod gets the same claims back).
- Revisions: a ControllerRevision per distinct pod template (`<set>-<hash>`); pods carry the
  `controller-revision-hash` label. RollingUpdate replaces pods from the highest ordinal down to `partition`,
  one at a time, each healthy before the next; OnDelete waits for the user to delete pods.
- Deleting the set removes its pods from the highest ordinal down: the controller holds the set with the
  finalizer ORDERED_DELETION until its pods are gone (kube deletes a set's pods in no order; kfab keeps the
  order the issue asks for). `--cascade=orphan` and foreground deletion leave the pods to the garbage collector.
"""

from __future__ import annotations

import asyncio

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, by_controller_uid
from kfab.controllers.podutil import available_in
from kfab.controllers.statefulset_util import (REVISION_LABEL, is_failed, is_running_and_ready,
                                               is_healthy as is_healthy_now,
                                               is_terminating, new_claims, new_pod, new_revision, ordered_ready,
                                               ordinal_of, partition, pod_revision, replicas, revision_data,
                                               revision_name, revision_number, same_data, start_ordinal,
                                               template_of, update_strategy)

POD = rt_of("Pod")
PVC = rt_of("PersistentVolumeClaim")
STATEFULSET = rt_of("StatefulSet", "apps/v1")
REVISION = rt_of("ControllerRevision", "apps/v1")
ORDERED_DELETION = "apps.kfab.io/ordered-pod-deletion"
GC_FINALIZERS = ("orphan", "foregroundDeletion")


def _typed(obj: dict, rt) -> dict:
    return dict(obj, apiVersion=rt.api_version, kind=rt.kind)


class StatefulSetController(Controller):
    name = "statefulset-controller"
    workers = 4

    def setup(self) -> None:
        self.sets = self.ctx.informer(STATEFULSET)
        self.pods = self.ctx.informer(POD)
        self.claims = self.ctx.informer(PVC)
        self.revisions = self.ctx.informer(REVISION)
        self.pods.add_index("controller-uid", by_controller_uid)
        self.revisions.add_index("controller-uid", by_controller_uid)
        self.sets.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        on_pod = lambda pod, *_: self.enqueue_owner(pod, "StatefulSet", "apps/v1")  # noqa: E731
        self.pods.add_handlers(on_pod, lambda old, new: on_pod(new), on_pod)
        on_rev = lambda rev, *_: self.enqueue_owner(rev, "StatefulSet", "apps/v1")  # noqa: E731
        self.revisions.add_handlers(on_rev, None, on_rev)

    def owned_pods(self, sts: dict) -> list[dict]:
        return self.pods.by_index("controller-uid", sts["metadata"]["uid"])

    async def reconcile(self, key: str) -> float | None:
        sts = self.sets.get(key)
        if sts is None:
            return None
        if sts["metadata"].get("deletionTimestamp"):
            await self._tear_down(sts)
            return None
        if ORDERED_DELETION not in (sts["metadata"].get("finalizers") or []):
            sts = await self._set_finalizers(sts, list(sts["metadata"].get("finalizers") or []) + [ORDERED_DELETION])
        current, update = await self._revisions(sts)
        await self._sync_pods(sts, current, update)
        requeue = await self._update_status(sts, current, update)
        await self._truncate_history(sts, current, update)
        return requeue

    # --- revisions -------------------------------------------------------------------------------------

    async def _revisions(self, sts: dict) -> tuple[dict, dict]:
        owned = sorted(self.revisions.by_index("controller-uid", sts["metadata"]["uid"]), key=revision_number)
        data = revision_data(sts)
        highest = revision_number(owned[-1]) if owned else 0
        equal = [r for r in owned if same_data(r.get("data"), data)]
        if equal:
            update = equal[-1]
            if revision_number(update) < highest:
                # Back to an earlier template (a rollback): it becomes the newest revision again, as kube does.
                update = await self._write_revision(dict(update, revision=highest + 1))
        else:
            update = await self._create_revision(sts, data, highest + 1)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in owned if r["metadata"]["name"] == current_name), update)
        return current, update

    async def _create_revision(self, sts: dict, data: dict, number: int) -> dict:
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        for collision in range(collisions, collisions + 5):
            try:
                created = await self.client.create(REVISION, new_revision(sts, data, number, collision))
            except APIStatusError as e:
                if not e.already_exists:
                    raise
                existing = await self.client.get(REVISION, sts["metadata"]["namespace"],
                                                 revision_name(sts, data, collision))
                if same_data(existing.get("data"), data):
                    created = existing   # ours, the cache had not seen it yet
                else:
                    continue             # a hash collision with another template: next collision count
            self.revisions.remember_write(_typed(created, REVISION))
            return created
        raise RuntimeError(f"no free ControllerRevision name for StatefulSet {sts['metadata']['name']}")

    async def _write_revision(self, revision: dict) -> dict:
        updated = await self.client.update(REVISION, _typed(revision, REVISION))
        self.revisions.remember_write(_typed(updated, REVISION))
        return updated

    async def _truncate_history(self, sts: dict, current: dict, update: dict) -> None:
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        live = {pod_revision(p) for p in self.owned_pods(sts)} | {current["metadata"]["name"],
                                                                   update["metadata"]["name"]}
        history = [r for r in sorted(self.revisions.by_index("controller-uid", sts["metadata"]["uid"]),
                                     key=revision_number) if r["metadata"]["name"] not in live]
        for rev in history[:max(0, len(history) - limit)]:
            meta = rev["metadata"]
            try:
                await self.client.delete(REVISION, meta["namespace"], meta["name"], uid=meta.get("uid"))
            except APIStatusError as e:
                if not e.not_found:
                    raise
            self.revisions.remember_delete(rev)

    # --- pods ------------------------------------------------------------------------------------------

    async def _sync_pods(self, sts: dict, current: dict, update: dict) -> None:
        """Take the next steps toward `replicas` healthy pods at the update revision; in OrderedReady mode
        return after the first step that must be waited for."""
        monotonic = ordered_ready(sts)
        first, count = start_ordinal(sts), replicas(sts)
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)

        def is_healthy(pod: dict) -> bool:
            # Running, Ready and, with minReadySeconds, Ready for that long (kube's isRunningAndAvailable).
            return is_healthy_now(pod) and available_in(pod, min_ready) == 0.0

        by_ordinal, condemned = {}, []
        for pod in self.owned_pods(sts):
            ordinal = ordinal_of(sts, pod)
            if ordinal is not None and first <= ordinal < first + count:
                by_ordinal[ordinal] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: ordinal_of(sts, p) or -1, reverse=True)

        parallel_creates = []
        for ordinal in range(first, first + count):
            pod = by_ordinal.get(ordinal)
            if pod is None:
                step = self._create_pod(sts, ordinal, current, update)
                if monotonic:
                    await step
                    return
                parallel_creates.append(step)
            elif is_failed(pod) and not is_terminating(pod):
                await self._delete_pod(sts, pod)   # recreated with the same identity next time round
                if monotonic:
                    return
            elif monotonic and not is_healthy(pod):
                return                             # wait until it is Running and Ready
        if parallel_creates:
            results = await asyncio.gather(*parallel_creates, return_exceptions=True)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise errors[0]

        unhealthy = [p for p in list(by_ordinal.values()) + condemned if not is_healthy(p)]
        for pod in condemned:
            if is_terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and any(p is not pod for p in unhealthy):
                return                             # scale down only while every other pod is healthy
            await self._delete_pod(sts, pod)
            if monotonic:
                return

        if update_strategy(sts) != "RollingUpdate" or len(by_ordinal) < count:
            return
        update_name = update["metadata"]["name"]
        for ordinal in range(first + count - 1, first + partition(sts) - 1, -1):
            pod = by_ordinal[ordinal]
            if pod_revision(pod) != update_name and not is_terminating(pod):
                await self._delete_pod(sts, pod)   # recreated at the update revision
                return
            if not is_healthy(pod):
                return                             # one at a time: wait for the replaced pod

    async def _create_pod(self, sts: dict, ordinal: int, current: dict, update: dict) -> None:
        await self._ensure_claims(sts, ordinal)
        use_current = update_strategy(sts) == "RollingUpdate" and ordinal < start_ordinal(sts) + partition(sts)
        revision = current if use_current else update
        pod = new_pod(sts, template_of(revision), ordinal, revision["metadata"]["name"])
        name, set_name = pod["metadata"]["name"], sts["metadata"]["name"]
        # AlreadyExists: the cache is behind (or an unowned pod holds the name): retried with backoff.
        await self.create_for(sts, self.pods, pod, f"create Pod {name} in StatefulSet {set_name} successful",
                              f"create Pod {name} in StatefulSet {set_name} failed error: {{error}}")

    async def _ensure_claims(self, sts: dict, ordinal: int) -> None:
        set_name = sts["metadata"]["name"]
        for claim in new_claims(sts, ordinal):
            meta = claim["metadata"]
            if self.claims.get_by(meta["namespace"], meta["name"]) is not None:
                continue  # sticky: an existing claim is reused as it is
            try:
                await self.create_for(
                    sts, self.claims, claim,
                    f"create Claim {meta['name']} Pod {set_name}-{ordinal} in StatefulSet {set_name} success",
                    f"create Claim {meta['name']} for Pod {set_name}-{ordinal} in StatefulSet {set_name} "
                    "failed error: {error}")
            except APIStatusError as e:
                if not e.already_exists:
                    raise

    async def _delete_pod(self, sts: dict, pod: dict) -> None:
        name, set_name = pod["metadata"]["name"], sts["metadata"]["name"]
        await self.delete_for(sts, self.pods, pod, f"delete Pod {name} in StatefulSet {set_name} successful",
                              f"delete Pod {name} in StatefulSet {set_name} failed error: {{error}}")

    # --- status ----------------------------------------------------------------------------------------

    async def _update_status(self, sts: dict, current: dict, update: dict) -> float | None:
        pods = [p for p in self.owned_pods(sts) if not is_failed(p)]
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [available_in(p, min_ready) for p in pods if is_running_and_ready(p)]
        current_name, update_name = current["metadata"]["name"], update["metadata"]["name"]
        old = dict(sts.get("status") or {})
        status = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(pods),
                  "readyReplicas": sum(1 for p in pods if is_running_and_ready(p)),
                  "availableReplicas": sum(1 for w in waits if w == 0.0),
                  "currentReplicas": sum(1 for p in pods if pod_revision(p) == current_name),
                  "updatedReplicas": sum(1 for p in pods if pod_revision(p) == update_name),
                  "currentRevision": current_name, "updateRevision": update_name,
                  "collisionCount": int(old.get("collisionCount") or 0)}
        if status["updatedReplicas"] == status["replicas"] == status["readyReplicas"] == replicas(sts):
            # The rollout is complete: the update revision becomes the current one.
            status["currentRevision"], status["currentReplicas"] = update_name, status["updatedReplicas"]
        for field in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status[field]:
                status.pop(field)  # omitempty, as kube writes them
        pending = [w for w in waits if w]
        requeue = min(pending) + 0.05 if pending else None
        return requeue if await self.write_status(self.sets, sts, status) else None

    # --- deletion --------------------------------------------------------------------------------------

    async def _tear_down(self, sts: dict) -> None:
        finalizers = list(sts["metadata"].get("finalizers") or [])
        if ORDERED_DELETION not in finalizers:
            return
        if not any(f in finalizers for f in GC_FINALIZERS):
            pods = sorted(self.owned_pods(sts), key=lambda p: ordinal_of(sts, p) or -1, reverse=True)
            if pods:
                top = pods[0]
                if not is_terminating(top):
                    await self._delete_pod(sts, top)
                return  # the pod's deletion event brings us back for the next one
        await self._set_finalizers(sts, [f for f in finalizers if f != ORDERED_DELETION])

    async def _set_finalizers(self, sts: dict, finalizers: list[str]) -> dict:
        meta = sts["metadata"]
        updated = await self.client.patch(STATEFULSET, meta["namespace"], meta["name"], {"metadata": {
            "finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}})
        updated = _typed(updated, STATEFULSET)
        self.sets.remember_write(updated)
        return updated


__all__ = ["StatefulSetController", "ORDERED_DELETION", "REVISION_LABEL"]
