"""Disruption controller: keep each PodDisruptionBudget's status, which the eviction subresource reads.

As kube-controller-manager's (pkg/controller/disruption):
- the budget's pods are the namespace's pods its selector matches (an empty selector: all of them);
- expectedPods is the number of pods; with maxUnavailable or a percentage minAvailable it is the scale of the
  pods' controllers instead (Deployment, ReplicaSet, StatefulSet replicas; pods without a controller are left
  out, with an UnmanagedPods event), percentages rounded up; a pod whose controller has no scale (a
  DaemonSet's, a Job's) fails the sync: DisruptionAllowed False, reason SyncFailed, as upstream;
- desiredHealthy = minAvailable, or expectedPods - maxUnavailable;
- currentHealthy counts Ready pods that are not terminating and not in status.disruptedPods (pods the
  eviction subresource let go less than DELETION_TIMEOUT ago); disruptionsAllowed = currentHealthy -
  desiredHealthy, never below 0, and 0 while no pod is expected;
- the DisruptionAllowed condition says whether a disruption is allowed now.
"""

from __future__ import annotations

import datetime

from kfab.client import rt_of
from kfab.controllers.deployment_util import resolve_int_or_percent
from kfab.machinery.controller import Controller, controller_ref, parse_time
from kfab.objects.disruption import SYNC_FAILED, is_pod_ready, set_condition, update_disruption_allowed
from kfab.objects.selectors import selector_from_object
from kfab.objects.meta import spec_of, status_of

POD = rt_of("Pod")
PDB = rt_of("PodDisruptionBudget", "policy/v1")
REPLICASET = rt_of("ReplicaSet", "apps/v1")
DEPLOYMENT = rt_of("Deployment", "apps/v1")
STATEFULSET = rt_of("StatefulSet", "apps/v1")
DELETION_TIMEOUT = 120.0   # seconds an evicted pod may take to be marked deleted before it counts again


class ScaleUnknown(Exception):
    pass


def selected_pods(pdb: dict, pods: list[dict]) -> list[dict]:
    """getPodsForPdb: a null selector selects nothing, an empty one every pod of the namespace."""
    selector = spec_of(pdb).get("selector")
    if selector is None:
        return []
    try:
        match = selector_from_object(selector)
    except ValueError:
        return []
    return [p for p in pods if match.matches(p["metadata"].get("labels"))]


def disrupted_pods(pdb: dict, pods: list[dict], now: datetime.datetime) -> tuple[dict, float | None]:
    """buildDisruptedPodMap: the entries of status.disruptedPods still waiting for their pod's deletion, and
    seconds until the first of them expires."""
    recorded = status_of(pdb).get("disruptedPods") or {}
    kept, recheck = {}, None
    for pod in pods:
        name = pod["metadata"]["name"]
        since = parse_time(recorded.get(name))
        if pod["metadata"].get("deletionTimestamp") or since is None:
            continue
        left = (since + datetime.timedelta(seconds=DELETION_TIMEOUT) - now).total_seconds()
        if left > 0:
            kept[name] = recorded[name]
            recheck = left if recheck is None else min(recheck, left)
    return kept, recheck


def count_healthy(pods: list[dict], disrupted: dict) -> int:
    return sum(1 for p in pods if not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"] not in disrupted
               and is_pod_ready(p))


class DisruptionController(Controller):
    name = "disruption-controller"
    workers = 2

    def setup(self) -> None:
        self.budgets = self.ctx.informer(PDB)
        self.pods = self.ctx.informer(POD)
        self.replicasets = self.ctx.informer(REPLICASET)
        self.deployments = self.ctx.informer(DEPLOYMENT)
        self.statefulsets = self.ctx.informer(STATEFULSET)
        self.budgets.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)

    def _pod_changed(self, pod: dict, *_ignored) -> None:
        namespace = pod["metadata"].get("namespace")
        for pdb in self.budgets.list(namespace):
            if selected_pods(pdb, [pod]):
                self.queue.add_after(f"{namespace}/{pdb['metadata']['name']}", 0.05)

    async def reconcile(self, key: str) -> float | None:
        pdb = self.budgets.get(key)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return None
        pods = selected_pods(pdb, self.pods.list(pdb["metadata"]["namespace"]))
        if not pods:
            self.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired = self._expected_and_desired(pdb, pods)
        except ScaleUnknown as e:
            self.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                       f"Failed to calculate the number of expected pods: {e}")
            await self._fail_safe(pdb, str(e))
            return None
        now = datetime.datetime.now(datetime.timezone.utc)
        disrupted, recheck = disrupted_pods(pdb, pods, now)
        healthy = count_healthy(pods, disrupted)
        allowed = healthy - desired if expected > 0 and healthy > desired else 0
        status = dict(status_of(pdb))
        status.update(currentHealthy=healthy, desiredHealthy=desired, expectedPods=expected,
                      disruptionsAllowed=allowed, observedGeneration=pdb["metadata"].get("generation", 1))
        if disrupted:
            status["disruptedPods"] = disrupted
        else:
            status.pop("disruptedPods", None)
        update_disruption_allowed(status)
        await self.write_status(self.budgets, pdb, status)
        return recheck + 0.05 if recheck is not None else None

    async def _fail_safe(self, pdb: dict, message: str) -> None:
        status = dict(pdb.get("status") or {}, disruptionsAllowed=0)
        set_condition(status, "False", SYNC_FAILED, message)
        await self.write_status(self.budgets, pdb, status)

    # --- expected pods ---------------------------------------------------------------------------------

    def _expected_and_desired(self, pdb: dict, pods: list[dict]) -> tuple[int, int]:
        """getExpectedPodCount: (expectedPods, desiredHealthy)."""
        spec = spec_of(pdb)
        if spec.get("maxUnavailable") is not None:
            expected = self._expected_scale(pdb, pods)
            return expected, max(0, expected - resolve_int_or_percent(spec["maxUnavailable"], expected, True))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, str):
            expected = self._expected_scale(pdb, pods)
            return expected, resolve_int_or_percent(min_available, expected, True)
        if min_available is not None:
            return len(pods), int(min_available)
        return len(pods), 0

    def _expected_scale(self, pdb: dict, pods: list[dict]) -> int:
        """getExpectedScale: the replicas of the pods' controllers, each controller counted once. Pods no
        controller owns are not counted (upstream warns, as here)."""
        scales: dict[str, int] = {}
        unmanaged = False
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged = True
                continue
            uid, replicas = self._scale_of(pod, ref)
            scales[uid] = replicas
        if unmanaged:
            selector = spec_of(pdb).get("selector")
            self.event(pdb, "Warning", "UnmanagedPods", f"Pods selected by this PodDisruptionBudget (selector: "
                       f"{selector}) were found to be unmanaged. As a result, the status of the PDB cannot be "
                       "calculated correctly, which may result in undefined behavior. To account for these pods "
                       "please set \".spec.minAvailable\" field of the PDB to an integer value.")
        return sum(scales.values())

    def _scale_of(self, pod: dict, ref: dict) -> tuple[str, int]:
        namespace = pod["metadata"]["namespace"]
        if ref.get("kind") == "ReplicaSet" and ref.get("apiVersion") == "apps/v1":
            rs = self.replicasets.get_by(namespace, ref["name"])
            if rs is not None and rs["metadata"].get("uid") == ref.get("uid"):
                owner = controller_ref(rs)
                if owner and owner.get("kind") == "Deployment" and owner.get("apiVersion") == "apps/v1":
                    deploy = self.deployments.get_by(namespace, owner["name"])
                    if deploy is not None and deploy["metadata"].get("uid") == owner.get("uid"):
                        return owner["uid"], int(spec_of(deploy).get("replicas", 1))
                return ref["uid"], int(spec_of(rs).get("replicas", 1))
        if ref.get("kind") == "StatefulSet" and ref.get("apiVersion") == "apps/v1":
            sts = self.statefulsets.get_by(namespace, ref["name"])
            if sts is not None and sts["metadata"].get("uid") == ref.get("uid"):
                return ref["uid"], int(spec_of(sts).get("replicas", 1))
        raise ScaleUnknown(f'found no controllers for pod "{pod["metadata"]["name"]}"')
