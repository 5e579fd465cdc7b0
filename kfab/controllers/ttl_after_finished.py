"""TTL-after-finished controller: a finished Job with spec.ttlSecondsAfterFinished is deleted (with its pods,
foreground) that many seconds after its Complete/Failed condition, as kube-controller-manager's
ttlafterfinished controller does."""

from __future__ import annotations

import datetime

from kfab.client import APIStatusError, rt_of
from kfab.controllers import job_util as ju
from kfab.machinery.controller import Controller, parse_time
from kfab.objects.meta import spec_of

JOB = rt_of("Job", "batch/v1")


def expires_at(job: dict) -> datetime.datetime | None:
    """When a finished Job with a TTL may go; None for a Job without a TTL or not finished."""
    ttl = spec_of(job).get("ttlSecondsAfterFinished")
    if ttl is None or job["metadata"].get("deletionTimestamp"):
        return None
    for kind in ju.FINISHED:
        cond = ju.condition(job, kind)
        if cond and cond.get("status") == "True":
            finished = parse_time(cond.get("lastTransitionTime"))
            if finished is not None:
                return finished + datetime.timedelta(seconds=int(ttl))
    return None


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"
    workers = 2

    def setup(self) -> None:
        self.jobs = self.ctx.informer(JOB)
        self.jobs.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new))

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        expiry = expires_at(job)
        if expiry is None:
            return None
        left = (expiry - ju.utcnow()).total_seconds()
        if left > 0:
            return left + 0.05
        meta = job["metadata"]
        try:
            # The resourceVersion precondition: a Job changed since it was read (e.g. its TTL raised) stays.
            await self.client.delete(JOB, meta["namespace"], meta["name"], propagation_policy="Foreground",
                                     resource_version=meta["resourceVersion"])
        except APIStatusError as e:
            if e.not_found:
                return None
            raise
        return None
