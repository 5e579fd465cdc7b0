"""ReplicaSet controller: keep `spec.replicas` active pods matching the selector, owned by the ReplicaSet.

Creates missing pods from the template (slow start), deletes surplus ones (not-ready and newest first),
adopts matching orphans, and reports replicas/fullyLabeledReplicas/readyReplicas/availableReplicas/
observedGeneration. Pods of a deleted ReplicaSet are the garbage collector's business, not this one's.
"""

from __future__ import annotations

from kfab.client import rt_of
from kfab.machinery.controller import Controller, by_controller_uid, controller_ref
from kfab.controllers.podutil import (BURST_REPLICAS, available_in, deletion_order, gather_limited, is_active,
                                      orphan_namespace, pod_from_template, slow_start)
from kfab.objects.selectors import selector_from_object

STATUS_BATCH = 0.1  # seconds
POD = rt_of("Pod")
REPLICASET = rt_of("ReplicaSet", "apps/v1")


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    workers = 5

    def setup(self) -> None:
        self.replicasets = self.ctx.informer(REPLICASET)
        self.pods = self.ctx.informer(POD)
        self.pods.add_index("controller-uid", by_controller_uid)
        self.pods.add_index("orphans-by-namespace", orphan_namespace)
        self.replicasets.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)

    def _enqueue_for(self, pod: dict, delay: float) -> None:
        ref = controller_ref(pod)
        if ref is None:
            self._enqueue_selecting(pod)
        elif ref.get("kind") == "ReplicaSet" and ref.get("apiVersion") == "apps/v1":
            self.queue.add_after(f"{pod['metadata'].get('namespace')}/{ref['name']}", delay)

    # A pod going away is answered at once (self-healing); creations and status changes of many pods are
    # batched into one reconcile per STATUS_BATCH, since each reconcile counts all pods of the ReplicaSet.
    def _pod_added(self, pod: dict) -> None:
        self._enqueue_for(pod, STATUS_BATCH)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if controller_ref(old) != controller_ref(new):
            self._enqueue_for(old, 0)
        gone = bool(new["metadata"].get("deletionTimestamp")) and not old["metadata"].get("deletionTimestamp")
        self._enqueue_for(new, 0 if gone else STATUS_BATCH)

    def _pod_deleted(self, pod: dict) -> None:
        self._enqueue_for(pod, 0)

    def _enqueue_selecting(self, pod: dict) -> None:
        """An orphan pod: every ReplicaSet whose selector matches it may adopt it."""
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        for rs in self.replicasets.list(meta.get("namespace")):
            try:
                if selector_from_object((rs.get("spec") or {}).get("selector")).matches(meta.get("labels")):
                    self.enqueue_obj(rs)
            except ValueError:
                continue

    async def reconcile(self, key: str) -> float | None:
        rs = self.replicasets.get(key)
        if rs is None:
            return None
        spec, meta = rs.get("spec") or {}, rs["metadata"]
        try:
            selector = selector_from_object(spec.get("selector"))
        except ValueError as e:
            self.event(rs, "Warning", "InvalidSelector", f"invalid selector: {e}")
            return None
        pods = [p for p in self.pods.by_index("controller-uid", meta["uid"])]
        if not meta.get("deletionTimestamp"):
            pods += await self._adopt_orphans(rs, selector)
        active = [p for p in pods if is_active(p)]
        error = None
        if not meta.get("deletionTimestamp"):
            error = await self._manage(rs, active, int(spec.get("replicas", 1)))
        requeue = await self._update_status(rs, [p for p in self.pods.by_index("controller-uid", meta["uid"])
                                                 if is_active(p)])
        if error is not None:
            raise error
        return requeue

    async def _adopt_orphans(self, rs: dict, selector) -> list[dict]:
        adopted = []
        for pod in self.pods.by_index("orphans-by-namespace", rs["metadata"]["namespace"]):
            pmeta = pod["metadata"]
            if controller_ref(pod) or pmeta.get("deletionTimestamp") or not selector.matches(pmeta.get("labels")):
                continue
            pod = await self.adopt(rs, self.pods, pod)
            if pod is not None:
                adopted.append(pod)
        return adopted

    async def _manage(self, rs: dict, active: list[dict], replicas: int) -> Exception | None:
        diff = len(active) - replicas
        if diff < 0:
            return await self._create_pods(rs, min(-diff, BURST_REPLICAS))
        if diff > 0:
            victims = sorted(active, key=deletion_order)[:min(diff, BURST_REPLICAS)]
            return await self._delete_pods(rs, victims)
        return None

    async def _create_pods(self, rs: dict, count: int) -> Exception | None:
        template = (rs.get("spec") or {}).get("template") or {}

        async def create_one() -> None:
            pod = pod_from_template(template, rs, f"{rs['metadata']['name']}-")
            await self.create_for(rs, self.pods, pod, "Created pod: {name}", "Error creating: {error}")

        _, error = await slow_start(count, create_one)
        return error

    async def _delete_pods(self, rs: dict, victims: list[dict]) -> Exception | None:
        async def delete_one(pod: dict) -> None:
            await self.delete_for(rs, self.pods, pod, f"Deleted pod: {pod['metadata']['name']}",
                                  "Error deleting: {error}")

        results = await gather_limited(victims, delete_one)
        errors = [r for r in results if isinstance(r, Exception)]
        return errors[0] if errors else None

    async def _update_status(self, rs: dict, active: list[dict]) -> float | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).items()
        labeled = ready = available = 0
        pending: list[float] = []
        for p in active:  # one pass: this runs for every batch of pod changes
            labels = p["metadata"].get("labels") or {}
            labeled += all(labels.get(k) == v for k, v in template_labels)
            wait = available_in(p, min_ready)
            if wait is not None:
                ready += 1
                if wait == 0.0:
                    available += 1
                else:
                    pending.append(wait)
        status = dict(rs.get("status") or {})
        new = dict(status)
        new["replicas"] = len(active)
        new["fullyLabeledReplicas"] = labeled
        new["readyReplicas"] = ready
        new["availableReplicas"] = available
        new["observedGeneration"] = rs["metadata"].get("generation", 1)
        for field in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not new[field]:
                new.pop(field)  # as kube: zero counts are omitted
        requeue = min(pending) + 0.05 if pending else None
        return requeue if await self.write_status(self.replicasets, rs, new) else None
