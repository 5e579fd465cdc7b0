"""Pure pieces of the Job controller (pkg/controller/job in kube-controller-manager): completion indexes,
pod failure policy, failure backoff, Job conditions and the pods a Job creates.

Kept free of I/O so that unit tests can feed pods and Jobs and check the decisions.
"""

from __future__ import annotations

import copy
import datetime

from kfab.machinery.controller import owner_ref, parse_time
from kfab.objects.meta import meta_of, spec_of, status_of

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"   # annotation and label
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
POD_FAILURE_BACKOFF = 10.0        # DefaultJobPodFailureBackOff
MAX_POD_FAILURE_BACKOFF = 600.0   # MaxJobPodFailureBackOff (10 min in the controller's code)
MAX_POD_CREATE_DELETE_PER_SYNC = 500
FINISHED = ("Complete", "Failed")

# Condition reasons and messages as the upstream controller writes them.
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
POD_FAILURE_POLICY = "PodFailurePolicy"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- conditions --------------------------------------------------------------------------------------

def condition(job: dict, type_: str) -> dict | None:
    for c in status_of(job).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def has_true_condition(job: dict, type_: str) -> bool:
    c = condition(job, type_)
    return bool(c and c.get("status") == "True")


def is_finished(job: dict) -> bool:
    return any(has_true_condition(job, t) for t in FINISHED)


def new_condition(type_: str, status: str, reason: str, message: str, now: datetime.datetime) -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastProbeTime": rfc3339(now), "lastTransitionTime": rfc3339(now)}


def ensure_condition(conditions: list[dict], type_: str, status: str, reason: str, message: str,
                     now: datetime.datetime) -> tuple[list[dict], bool]:
    """ensureJobConditionStatus: replace the condition of that type when anything differs; a False
    condition that is not there yet is not added."""
    out = [dict(c) for c in conditions]
    for i, c in enumerate(out):
        if c.get("type") == type_:
            if (c.get("status"), c.get("reason"), c.get("message")) == (status, reason, message):
                return out, False
            out[i] = new_condition(type_, status, reason, message, now)
            return out, True
    if status == "False":
        return out, False
    return out + [new_condition(type_, status, reason, message, now)], True


# --- completion indexes --------------------------------------------------------------------------------

def completion_index(pod: dict) -> int | None:
    value = (meta_of(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    if value is None or not value.isdigit():
        return None
    return int(value)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    """status.completedIndexes ("1,3-5,7") -> {1, 3, 4, 5, 7}; values past completions are dropped."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            continue
        out.update(i for i in range(first, last + 1) if i < completions)
    return out


def format_indexes(indexes: set[int]) -> str:
    """Increasing order; three or more consecutive numbers as first-last (kube's orderedIntervals.String)."""
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        parts.extend(_run_text(run))
        run = [i]
    parts.extend(_run_text(run))
    return ",".join(parts)


def _run_text(run: list[int]) -> list[str]:
    if not run:
        return []
    if len(run) >= 3:
        return [f"{run[0]}-{run[-1]}"]
    return [str(i) for i in run]


def pending_indexes(completions: int, succeeded: set[int], active: set[int], count: int) -> list[int]:
    """The lowest `count` indexes neither succeeded nor running (firstPendingIndexes)."""
    out = []
    for i in range(completions):
        if len(out) >= count:
            break
        if i not in succeeded and i not in active:
            out.append(i)
    return out


# --- pods --------------------------------------------------------------------------------------------

def has_finalizer(pod: dict) -> bool:
    return TRACKING_FINALIZER in (meta_of(pod).get("finalizers") or [])


def is_terminating(pod: dict) -> bool:
    return bool(meta_of(pod).get("deletionTimestamp"))


def only_replace_failed(job: dict) -> bool:
    spec = spec_of(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_failed(pod: dict, job: dict) -> bool:
    """isPodFailed: Failed phase; or, unless only failed pods are replaced, deleted before it succeeded (an
    orphan that never reaches a phase counts as a failure)."""
    phase = status_of(pod).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return is_terminating(pod) and phase != "Succeeded"


def is_succeeded(pod: dict) -> bool:
    return status_of(pod).get("phase") == "Succeeded"


def is_active(pod: dict) -> bool:
    phase = status_of(pod).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status_of(pod).get("conditions") or [])


def finished_time(pod: dict, now: datetime.datetime) -> datetime.datetime:
    """When the pod finished: its last container's finishedAt, else its deletion time, else now."""
    latest = None
    for cs in status_of(pod).get("containerStatuses") or []:
        when = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if when and (latest is None or when > latest):
            latest = when
    return latest or parse_time(meta_of(pod).get("deletionTimestamp")) or now


def restarts(pod: dict) -> int:
    status = status_of(pod)
    return sum(int(cs.get("restartCount") or 0)
               for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []))


def pod_for(job: dict, index: int | None) -> dict:
    """The pod the Job creates: its template with the tracking finalizer, an owner reference, and for an
    Indexed Job the completion index (annotation, label, JOB_COMPLETION_INDEX from the downward API, hostname)."""
    meta, spec = job["metadata"], spec_of(job)
    template = copy.deepcopy(spec.get("template") or {})
    tmeta, pod_spec = meta_of(template), spec_of(template)
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    generate = f"{meta['name']}-"
    if index is not None:
        annotations[COMPLETION_INDEX] = str(index)
        labels[COMPLETION_INDEX] = str(index)
        pod_spec["hostname"] = f"{meta['name']}-{index}"
        generate = f"{meta['name']}-{index}-"
        env_var = {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
        for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
            env = [e for e in container.get("env") or [] if e.get("name") != COMPLETION_INDEX_ENV]
            container["env"] = [env_var] + env  # first, as kube: other variables may refer to it
    if len(generate) > 58:
        generate = generate[:57] + "-"  # the name gets 5 random characters, within 63
    pod_meta = {"generateName": generate, "namespace": meta["namespace"], "labels": labels,
                "ownerReferences": [owner_ref(job)],
                "finalizers": list(dict.fromkeys(list(tmeta.get("finalizers") or []) + [TRACKING_FINALIZER]))}
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


# --- pod failure policy ----------------------------------------------------------------------------------

def match_pod_failure_policy(policy: dict, pod: dict) -> tuple[str | None, bool, str | None]:
    """matchPodFailurePolicy: (FailJob message or None, count the failure?, action of the matching rule)."""
    status = status_of(pod)
    meta = meta_of(pod)
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            matched = _matching_container(status, rule["onExitCodes"])
            if matched is None:
                continue
            if action == "FailJob":
                code = matched["state"]["terminated"].get("exitCode")
                return (f"Container {matched.get('name')} for pod {meta.get('namespace')}/{meta.get('name')} failed "
                        f"with exit code {code} matching FailJob rule at index {i}"), True, action
        else:
            pattern = _matching_condition(status, rule.get("onPodConditions") or [])
            if pattern is None:
                continue
            if action == "FailJob":
                return (f"Pod {meta.get('namespace')}/{meta.get('name')} has condition {pattern} matching FailJob "
                        f"rule at index {i}"), True, action
        if action == "Ignore":
            return None, False, action
        return None, True, action  # Count (and FailIndex, which needs backoffLimitPerIndex)
    return None, True, None


def _matching_container(status: dict, requirement: dict) -> dict | None:
    values = set(requirement.get("values") or [])
    name = requirement.get("containerName")
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if name and cs.get("name") != name:
            continue
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated:
            continue
        code = int(terminated.get("exitCode") or 0)
        if code == 0:
            continue  # a container that succeeded never matches
        if (code in values) == (requirement.get("operator") == "In"):
            return cs
    return None


def _matching_condition(status: dict, patterns: list[dict]) -> str | None:
    for c in status.get("conditions") or []:
        for pattern in patterns:
            if c.get("type") == pattern.get("type") and c.get("status") == (pattern.get("status") or "True"):
                return c.get("type")
    return None


# --- failure backoff -------------------------------------------------------------------------------------

def backoff_remaining(failures: int, last_failure: datetime.datetime | None, now: datetime.datetime,
                      base: float = POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF) -> float:
    """Seconds before the next pod may be created after `failures` failures since the last success:
    base * 2^(failures-1), capped, counted from the last failure (getRemainingTimeForFailuresCount)."""
    if failures <= 0 or last_failure is None:
        return 0.0
    delay = min(base * 2 ** (failures - 1), cap)
    return max(0.0, delay - (now - last_failure).total_seconds())


def next_backoff_record(failures: int, last_failure: datetime.datetime | None, succeeded_at: list[datetime.datetime],
                        failed_at: list[datetime.datetime]) -> tuple[int, datetime.datetime | None]:
    """newBackoffRecord: a success resets the count; failures after the last success add up."""
    failed_at = sorted(failed_at)
    if not succeeded_at:
        if not failed_at:
            return failures, last_failure
        return failures + len(failed_at), failed_at[-1]
    last_success = max(succeeded_at)
    later = [t for t in failed_at if t > last_success]
    return len(later), (later[-1] if later else None)
