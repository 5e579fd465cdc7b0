"""Table columns and cells of batch/v1 Job and CronJob, as kube-apiserver's printJob / printCronJob.

Registered in kfab.objects.columns.PRINTERS.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kfab.objects.cells import (age_column, age_of, column, container_cells, describe, format_selector,
                                human_duration, name_column, name_of, parse_time, since)
from kfab.objects.meta import meta_of, spec_of, status_of

_BATCH = "io.k8s.api.batch.v1."
_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."

JOB_COLUMNS = [
    name_column(),
    column("Status", description="Status of the job."),
    column("Completions", description=describe(_BATCH + "JobStatus", "succeeded")),
    column("Duration", description="Time required to complete the job."),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
    column("Selector", priority=1, description=describe(_BATCH + "JobSpec", "selector")),
]


def _has_condition(status: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def job_status_cell(job: dict) -> str:
    status = status_of(job)
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if meta_of(job).get("deletionTimestamp"):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(status, kind):
            return kind
    return "Running"


def _completions(spec: dict, status: dict) -> str:
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _duration(status: dict, now: datetime) -> str:
    start = parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time(status.get("completionTime")) or now
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    return human_duration((end - start).total_seconds())


def job_row(obj: dict, now: datetime) -> list:
    spec, status = spec_of(obj), status_of(obj)
    names, images = container_cells((spec.get("template") or {}).get("spec"))
    return [name_of(obj), job_status_cell(obj), _completions(spec, status), _duration(status, now), age_of(obj, now),
            names, images, format_selector(spec.get("selector"))]


CRONJOB_COLUMNS = [
    name_column(),
    column("Schedule", description=describe(_BATCH + "CronJobSpec", "schedule")),
    column("Timezone", description=describe(_BATCH + "CronJobSpec", "timeZone")),
    column("Suspend", "boolean", describe(_BATCH + "CronJobSpec", "suspend")),
    column("Active", "integer", describe(_BATCH + "CronJobStatus", "active")),
    column("Last Schedule", description=describe(_BATCH + "CronJobStatus", "lastScheduleTime")),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
    column("Selector", priority=1, description=describe(_BATCH + "JobSpec", "selector")),
]


def cronjob_row(obj: dict, now: datetime) -> list:
    spec, status = spec_of(obj), status_of(obj)
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = container_cells((job_spec.get("template") or {}).get("spec"))
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    return [name_of(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"), len(status.get("active") or []),
            since(last, now) if last else "<none>", age_of(obj, now), names, images,
            format_selector(job_spec.get("selector"))]


PRINTERS: dict[str, tuple[list[dict], object]] = {
    "Job": (JOB_COLUMNS, job_row),
    "CronJob": (CRONJOB_COLUMNS, cronjob_row),
}
