"""Pure pieces of the CronJob controller (pkg/controller/cronjob/utils.go): which scheduled time is due, the
Job made for it, and when to look again. `now` is always passed in, so tests drive the clock.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass

from kfab.machinery.controller import owner_ref, parse_time
from kfab.objects.cron import Schedule
from kfab.objects.meta import meta_of, spec_of, status_of

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100  # more missed start times than this -> the TooManyMissedTimes warning
NEXT_SCHEDULE_DELTA = 0.1  # seconds past the scheduled time at which the controller looks again


@dataclass
class Due:
    earliest: datetime.datetime            # last schedule time, or creation, or now - startingDeadlineSeconds
    most_recent: datetime.datetime | None  # the latest scheduled time not after now, since earliest
    too_many_missed: bool


def _earliest(cronjob: dict, now: datetime.datetime, with_deadline: bool) -> datetime.datetime:
    meta, spec, status = cronjob["metadata"], spec_of(cronjob), status_of(cronjob)
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(meta.get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        # The controller schedules nothing that is older than startingDeadlineSeconds anyway.
        earliest = max(earliest, now - datetime.timedelta(seconds=int(deadline)))
    return earliest


def most_recent_schedule_time(cronjob: dict, now: datetime.datetime, schedule: Schedule,
                              with_deadline: bool = True) -> Due:
    """mostRecentScheduleTime: of the start times missed since `earliest`, only the latest is run; the count
    is estimated from the interval between two start times, as upstream, to stay cheap after a long outage."""
    earliest = _earliest(cronjob, now, with_deadline)
    t1 = schedule.next(earliest)
    if t1 is None or now < t1:
        return Due(earliest, None, False)
    t2 = schedule.next(t1)
    if t2 is None or now < t2:
        return Due(earliest, t1, False)
    interval = round((t2 - t1).total_seconds())
    if interval < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // interval + 1
    # Start two intervals before the estimated latest and walk forward. For schedules with uneven gaps
    # (`30 6-16/4 * * 1-5`) the estimate can overshoot now; upstream then starts nothing, here the walk
    # starts again from t1 (bounded: such schedules are sparse).
    most_recent = _latest_not_after(schedule, t1 + datetime.timedelta(seconds=(missed - 2) * interval), now)
    if most_recent is None:
        most_recent = _latest_not_after(schedule, t1 - datetime.timedelta(seconds=1), now, limit=10_000)
    return Due(earliest, most_recent, missed > TOO_MANY_MISSED)


def _latest_not_after(schedule: Schedule, start: datetime.datetime, now: datetime.datetime,
                      limit: int | None = None) -> datetime.datetime | None:
    latest, t, steps = None, schedule.next(start), 0
    while t is not None and t <= now and (limit is None or steps < limit):
        latest, t, steps = t, schedule.next(t), steps + 1
    return latest


def seconds_to_next(cronjob: dict, now: datetime.datetime, schedule: Schedule) -> float | None:
    """nextScheduleTimeDuration: how long until the next start time (plus a small delta)."""
    due = most_recent_schedule_time(cronjob, now, schedule, with_deadline=False)
    base = due.most_recent or due.earliest
    nxt = schedule.next(base)
    if nxt is None:
        return None
    return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA


def job_name(cronjob: dict, scheduled: datetime.datetime) -> str:
    """<cronjob>-<scheduled time in minutes since the epoch>: one name per start time, so a second try
    after a crash meets AlreadyExists instead of starting the Job twice."""
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_for(cronjob: dict, scheduled: datetime.datetime, zone: datetime.tzinfo) -> dict:
    """getJobFromTemplate2: the jobTemplate's labels, annotations and spec, the scheduled time annotation
    (RFC 3339 in the CronJob's time zone) and the CronJob as controller owner."""
    template = spec_of(cronjob).get("jobTemplate") or {}
    tmeta = meta_of(template)
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(zone).isoformat().replace("+00:00", "Z")
    meta = {"name": job_name(cronjob, scheduled), "namespace": cronjob["metadata"]["namespace"],
            "annotations": annotations, "ownerReferences": [owner_ref(cronjob)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(spec_of(template))}


def finished_condition(job: dict) -> str | None:
    """"Complete" or "Failed" for a finished Job, else None."""
    for c in status_of(job).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def job_ref(job: dict) -> dict:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
            "apiVersion": "batch/v1", "resourceVersion": meta.get("resourceVersion", "")}


def jobs_to_clean(jobs: list[dict], successful_limit: int | None, failed_limit: int | None) -> list[dict]:
    """Finished Jobs past the history limits, oldest first (by start time, then creation)."""
    def age(job: dict) -> tuple:
        status = status_of(job)
        return (status.get("startTime") or job["metadata"].get("creationTimestamp") or "",
                job["metadata"].get("creationTimestamp") or "")

    out = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        done = sorted((j for j in jobs if finished_condition(j) == kind), key=age)
        out += done[:max(0, len(done) - int(limit))]
    return out
