"""Job controller: run a Job's pods to completion, as kube-controller-manager's job controller does.

One reconcile of a Job (syncJob):
1. count: pods that finished since the last count and still carry the `batch.kubernetes.io/job-tracking`
   finalizer go into status.uncountedTerminatedPods first (written), then lose the finalizer, then move into
   status.succeeded/failed (written) - a crash anywhere in between never counts a pod twice or never;
2. decide: a pod failure policy FailJob rule, failures past backoffLimit, activeDeadlineSeconds, or enough
   completions finish the Job - first with the interim FailureTarget/SuccessCriteriaMet condition while its
   active pods are deleted, then Failed/Complete once nothing is left running or uncounted;
3. manage: otherwise keep min(parallelism, completions left) pods active (Indexed: one per pending index,
   with JOB_COMPLETION_INDEX), after the failure backoff 10 s * 2^(failures-1); a suspended Job has none.
Pods of a Job that finished or went away only lose the finalizer.
"""

from __future__ import annotations

import datetime

from kfab.client import APIStatusError, rt_of
from kfab.controllers import job_util as ju
from kfab.controllers.job_sync import JobSync
from kfab.controllers.podutil import gather_limited, slow_start
from kfab.machinery.controller import Controller, by_controller_uid, controller_ref

POD = rt_of("Pod")
JOB = rt_of("Job", "batch/v1")
STATUS_BATCH = 0.5  # seconds: pod changes are counted in batches (kube: syncJobBatchPeriod, 1 s)


def job_of_pod(pod: dict) -> list[str]:
    """Index function: "namespace/name" of the Job controlling a pod."""
    ref = controller_ref(pod)
    if ref and ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1":
        return [f"{pod['metadata'].get('namespace')}/{ref['name']}"]
    return []


class JobController(Controller):
    name = "job-controller"
    workers = 5

    def setup(self) -> None:
        self.jobs = self.ctx.informer(JOB)
        self.pods = self.ctx.informer(POD)
        self.pods.add_index("controller-uid", by_controller_uid)
        self.pods.add_index("job", job_of_pod)
        self.jobs.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_gone)
        self.base_backoff = float(self.ctx.options.get("job-pod-failure-backoff", ju.POD_FAILURE_BACKOFF))
        self._backoff: dict[str, tuple[int, datetime.datetime | None]] = {}  # job uid -> failures, last failure

    def _pod_changed(self, pod: dict) -> None:
        for key in job_of_pod(pod):
            self.queue.add_after(key, 0 if ju.is_terminating(pod) else STATUS_BATCH)

    def _pod_gone(self, pod: dict) -> None:
        for key in job_of_pod(pod):
            self.queue.add(key)

    # --- reconcile ---------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            # Gone: its pods are no longer counted anywhere, so they only lose the finalizer.
            await self._remove_finalizers([p for p in self.pods.by_index("job", key) if ju.has_finalizer(p)])
            return None
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pods.by_index("controller-uid", uid)]
        if ju.is_finished(job):
            self._backoff.pop(uid, None)
            await self._remove_finalizers([p for p in pods if ju.has_finalizer(p)])
            return None
        return await JobSync(self, job, pods).run()

    # --- writes ------------------------------------------------------------------------------------------

    async def put_status(self, job: dict, status: dict) -> dict | None:
        if not await self.write_status(self.jobs, job, status):
            return None
        return self.jobs.get_by(job["metadata"]["namespace"], job["metadata"]["name"])

    async def _remove_finalizers(self, pods: list[dict]) -> list[str]:
        """Take the tracking finalizer off these pods; the uids of those done (or gone)."""
        async def remove(pod: dict) -> str:
            meta = pod["metadata"]
            patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [ju.TRACKING_FINALIZER]}}
            try:
                updated = await self.client.patch(POD, meta["namespace"], meta["name"], patch, "strategic")
            except APIStatusError as e:
                if not e.not_found:
                    raise
                self.pods.remember_delete(pod)
                return meta["uid"]
            if updated["metadata"].get("uid") == meta["uid"]:
                self.pods.remember_write(updated)
            return meta["uid"]

        results = await gather_limited(pods, remove)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return list(results)

    async def delete_pods(self, job: dict, pods: list[dict], keep_uncounted: bool) -> int:
        """Delete pods; with keep_uncounted=False the finalizer goes first, so they never count as failed
        (pods removed for suspend or for lower parallelism, as kube's deleteJobPods)."""
        if not keep_uncounted:
            await self._remove_finalizers([p for p in pods if ju.has_finalizer(p)])

        async def delete(pod: dict) -> None:
            meta = pod["metadata"]
            try:
                answer = await self.client.delete(POD, meta["namespace"], meta["name"], uid=meta["uid"])
            except APIStatusError as e:
                if e.not_found:
                    self.pods.remember_delete(pod)
                    return
                self.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                raise
            if answer.get("kind") == "Pod" and answer.get("metadata", {}).get("deletionTimestamp"):
                self.pods.remember_write(answer)
            else:
                self.pods.remember_delete(pod)
            self.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

        results = await gather_limited(pods, delete)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return len(pods)

    async def create_pods(self, job: dict, indexes: list[int | None]) -> BaseException | None:
        pending = list(indexes)

        async def create_one() -> None:
            pod = ju.pod_for(job, pending.pop(0))
            await self.create_for(job, self.pods, pod, "Created pod: {name}", "Error creating: {error}")

        _, error = await slow_start(len(indexes), create_one)
        return error
