"""CronJob controller: a Job per scheduled time, as kube-controller-manager's cronjob controller (v2) does.

One reconcile of a CronJob (syncCronJob): bring status.active in line with its Jobs (finished ones leave
it, lastSuccessfulTime follows Complete ones), drop finished Jobs beyond the history limits, then - unless
suspended - start the Job of the most recent due start time: after an outage only the latest missed one
runs (more than 100 missed: a TooManyMissedTimes warning), none older than startingDeadlineSeconds;
concurrencyPolicy Forbid skips while a Job is active, Replace deletes the active ones first. The key is
queued again for the next start time.
"""

from __future__ import annotations

import datetime
import zoneinfo

from kfab.client import APIStatusError, rt_of
from kfab.controllers import cronjob_util as cu
from kfab.controllers import job_util as ju
from kfab.machinery.controller import Controller, by_controller_uid, controller_ref
from kfab.objects.cron import Schedule, ScheduleError
from kfab.objects.meta import spec_of, status_of

JOB = rt_of("Job", "batch/v1")
CRONJOB = rt_of("CronJob", "batch/v1")


def _rfc1123z(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


class CronJobController(Controller):
    name = "cronjob-controller"
    workers = 2
    clock = staticmethod(ju.utcnow)  # replaced in tests

    def setup(self) -> None:
        self.cronjobs = self.ctx.informer(CRONJOB)
        self.jobs = self.ctx.informer(JOB)
        self.jobs.add_index("controller-uid", by_controller_uid)
        self.cronjobs.add_handlers(self.enqueue_obj, self._cronjob_updated, self.enqueue_obj)
        self.jobs.add_handlers(self._job_event, lambda old, new: self._job_event(new), self._job_event)

    def _cronjob_updated(self, old: dict, new: dict) -> None:
        self.enqueue_obj(new)

    def _job_event(self, job: dict) -> None:
        self.enqueue_owner(job, "CronJob", "batch/v1")

    async def reconcile(self, key: str) -> float | None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None or cronjob["metadata"].get("deletionTimestamp"):
            return None
        jobs = self.jobs.by_index("controller-uid", cronjob["metadata"]["uid"])
        status = dict(status_of(cronjob))
        await self._track_active(cronjob, jobs, status)
        await self._clean_history(cronjob, jobs)
        requeue = None
        try:
            requeue = await self._maybe_start(cronjob, status)
        finally:
            await self._write(cronjob, status)
        return requeue

    # --- status.active ---------------------------------------------------------------------------------

    async def _track_active(self, cronjob: dict, jobs: list[dict], status: dict) -> None:
        active = list(status.get("active") or [])
        active_uids = {ref.get("uid") for ref in active}
        children = {j["metadata"]["uid"] for j in jobs}
        for job in jobs:
            uid, finished = job["metadata"]["uid"], cu.finished_condition(job)
            if uid not in active_uids and not finished:
                self.event(cronjob, "Warning", "UnexpectedJob",
                           f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}")
            elif uid in active_uids and finished:
                active = [ref for ref in active if ref.get("uid") != uid]
                self.event(cronjob, "Normal", "SawCompletedJob",
                           f"Saw completed job: {job['metadata']['name']}, condition: {finished}")
            if finished == "Complete":
                done = status_of(job).get("completionTime")
                if done and (not status.get("lastSuccessfulTime") or done > status["lastSuccessfulTime"]):
                    status["lastSuccessfulTime"] = done
        for ref in list(active):
            if ref.get("uid") in children:
                continue
            try:  # the cache may be behind: ask the API server before calling a Job missing
                await self.client.get(JOB, ref.get("namespace"), ref.get("name"))
            except APIStatusError as e:
                if not e.not_found:
                    raise
                self.event(cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                active = [r for r in active if r.get("uid") != ref.get("uid")]
        status["active"] = active

    async def _clean_history(self, cronjob: dict, jobs: list[dict]) -> None:
        spec = spec_of(cronjob)
        for job in cu.jobs_to_clean(jobs, spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")):
            await self._delete_job(cronjob, job)

    async def _delete_job(self, cronjob: dict, job: dict) -> None:
        meta = job["metadata"]
        try:
            await self.client.delete(JOB, meta["namespace"], meta["name"], propagation_policy="Background")
        except APIStatusError as e:
            if not e.not_found:
                self.event(cronjob, "Warning", "FailedDelete", f"Deleted job: {e.message}")
                raise
        self.jobs.remember_delete(job)
        self.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {meta['name']}")

    # --- starting Jobs ---------------------------------------------------------------------------------

    async def _maybe_start(self, cronjob: dict, status: dict) -> float | None:
        spec = spec_of(cronjob)
        if spec.get("suspend") is True:
            return None
        zone_name = spec.get("timeZone")
        try:
            zone = zoneinfo.ZoneInfo(zone_name) if zone_name else datetime.timezone.utc
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.event(cronjob, "Warning", "UnknownTimeZone", f"invalid timeZone: {zone_name!r}")
            return None
        try:
            schedule = Schedule(spec.get("schedule", ""), zone_name)
        except ScheduleError as e:
            self.event(cronjob, "Warning", "UnparseableSchedule",
                       f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            return None
        now = self.clock()
        view = dict(cronjob, status=status)
        try:
            due = cu.most_recent_schedule_time(view, now, schedule)
        except ValueError as e:
            self.event(cronjob, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}")
            return None
        if due.too_many_missed:
            self.event(cronjob, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                       ".spec.startingDeadlineSeconds or check clock skew")
        again = cu.seconds_to_next(view, now, schedule)
        scheduled = due.most_recent
        if scheduled is None:
            return again
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + datetime.timedelta(seconds=int(deadline)) < now:
            self.event(cronjob, "Warning", "MissSchedule",
                       f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}")
            return again
        name = cu.job_name(cronjob, scheduled)
        if any(ref.get("name") == name for ref in status["active"]) or \
                status.get("lastScheduleTime") == ju.rfc3339(scheduled):
            return again
        if spec.get("concurrencyPolicy") == "Forbid" and status["active"]:
            self.event(cronjob, "Normal", "JobAlreadyActive",
                       "Not starting job because prior execution is running and concurrency policy is Forbid")
            return again
        if spec.get("concurrencyPolicy") == "Replace":
            for ref in list(status["active"]):
                job = self.jobs.get_by(ref.get("namespace"), ref.get("name"))
                if job is not None:
                    await self._delete_job(cronjob, job)
                status["active"] = [r for r in status["active"] if r.get("uid") != ref.get("uid")]
        job = await self._create_job(cronjob, cu.job_for(cronjob, scheduled, zone))
        if job is None:
            return again
        if not any(ref.get("uid") == job["metadata"]["uid"] for ref in status["active"]):
            status["active"] = status["active"] + [cu.job_ref(job)]
        status["lastScheduleTime"] = ju.rfc3339(scheduled)
        return again

    async def _create_job(self, cronjob: dict, job: dict) -> dict | None:
        """The new Job; on AlreadyExists the existing one when this CronJob controls it (a retry after a
        crash between the create and the status write), else None."""
        try:
            made = await self.client.create(JOB, job)
        except APIStatusError as e:
            if not e.already_exists:
                self.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {e.message}")
                raise
            existing = await self.client.get(JOB, job["metadata"]["namespace"], job["metadata"]["name"])
            ref = controller_ref(existing)
            return existing if ref and ref.get("uid") == cronjob["metadata"]["uid"] else None
        made = dict(made, apiVersion="batch/v1", kind="Job")
        self.jobs.remember_write(made)
        self.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {made['metadata']['name']}")
        return made

    async def _write(self, cronjob: dict, status: dict) -> None:
        if not status.get("active"):
            status.pop("active", None)
        await self.write_status(self.cronjobs, cronjob, status)
