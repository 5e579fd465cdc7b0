"""One syncJob of one Job (see kfab.controllers.job): count finished pods through
status.uncountedTerminatedPods, decide whether the Job finishes, manage its active pods, write the status.

JobSync holds what was read at the start of the sync; the writes go through the controller (`ctl`), which
owns the client, the informers and the failure backoff records.
"""

from __future__ import annotations

import datetime

from kfab.controllers import job_util as ju
from kfab.machinery.controller import Controller, parse_time
from kfab.objects.meta import spec_of, status_of


class JobSync:
    """One syncJob of one Job: the state read at its start and the steps that follow."""

    def __init__(self, ctl: Controller, job: dict, pods: list[dict]):
        # ctl: the JobController that builds this sync (named by its base class: job.py imports this module)
        self.ctl, self.job, self.pods = ctl, job, pods
        self.now = ju.utcnow()
        self.spec = spec_of(job)
        self.status = dict(status_of(job))
        self.indexed = self.spec.get("completionMode") == "Indexed"
        self.completions = self.spec.get("completions")
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        self.uncounted_ok = set(uncounted.get("succeeded") or [])
        self.uncounted_failed = set(uncounted.get("failed") or [])
        self.requeue: list[float] = []

    async def run(self) -> float | None:
        job, spec, status = self.job, self.spec, self.status
        suspended = spec.get("suspend") is True
        deleting = bool(job["metadata"].get("deletionTimestamp"))
        self._suspend_condition(suspended)
        if not suspended and not status.get("startTime"):
            status["startTime"] = ju.rfc3339(self.now)

        new_ok, new_failed, fail_message = self._newly_finished()
        self._record_backoff(new_ok, new_failed)
        succeeded_indexes = self._succeeded_indexes(new_ok)
        succeeded = (len(succeeded_indexes) if self.indexed else
                     int(status.get("succeeded") or 0) + len(self.uncounted_ok) + len(new_ok))
        failed = int(status.get("failed") or 0) + len(self.uncounted_failed) + len(new_failed)
        active = [p for p in self.pods if ju.is_active(p)]

        finishing = self._finishing_condition(fail_message, failed, succeeded, active)
        if finishing is not None:
            kind, reason, message = finishing
            if ju.condition(job, kind) is None:
                status["conditions"], _ = ju.ensure_condition(status.get("conditions") or [], kind, "True", reason,
                                                              message, self.now)
            if active:
                await self.ctl.delete_pods(job, active, keep_uncounted=True)
                active = []
        elif deleting:
            pass
        elif suspended:
            if active:
                await self.ctl.delete_pods(job, active, keep_uncounted=False)
                active = []
        else:
            active = await self._manage(active, succeeded, succeeded_indexes)

        # Count: uncounted first, then the finalizers, then the counters.
        failure_target = finishing is not None and finishing[0] == "FailureTarget"
        to_release = [p for p in self.pods if ju.has_finalizer(p) and
                      (deleting or finishing is not None or ju.is_succeeded(p) or ju.is_failed(p, job))]
        for pod in new_ok:
            self.uncounted_ok.add(pod["metadata"]["uid"])
        for pod in new_failed:
            self.uncounted_failed.add(pod["metadata"]["uid"])
        if failure_target:
            # Every pod still running when the Job fails counts as failed (unless the policy ignores its failure).
            for pod in to_release:
                uid = pod["metadata"]["uid"]
                if not ju.is_succeeded(pod) and uid not in self.uncounted_failed and self._counts_as_failed(pod):
                    self.uncounted_failed.add(uid)
        if self.indexed:
            status["completedIndexes"] = ju.format_indexes(succeeded_indexes)
            status["succeeded"] = len(succeeded_indexes)
            self.uncounted_ok.clear()  # the index is the record: no uid needed
        status["uncountedTerminatedPods"] = self._uncounted()
        job = await self._write(status)
        if job is None:
            return None
        released = set(await self.ctl._remove_finalizers(to_release))
        still_held = {p["metadata"]["uid"] for p in self.pods if ju.has_finalizer(p)} - released
        status = dict(status_of(job))
        moved_ok = {u for u in self.uncounted_ok if u not in still_held}
        moved_failed = {u for u in self.uncounted_failed if u not in still_held}
        if not self.indexed:
            status["succeeded"] = int(status.get("succeeded") or 0) + len(moved_ok)
        status["failed"] = int(status.get("failed") or 0) + len(moved_failed)
        self.uncounted_ok -= moved_ok
        self.uncounted_failed -= moved_failed
        status["uncountedTerminatedPods"] = self._uncounted()

        created = [p for p in self.ctl.pods.by_index("controller-uid", self.job["metadata"]["uid"])]
        active_now = [p for p in created if ju.is_active(p)]
        terminating = sum(1 for p in created if ju.is_terminating(p) and
                          status_of(p).get("phase") not in ("Succeeded", "Failed"))
        status["active"] = len(active_now)
        status["ready"] = sum(1 for p in active_now if ju.is_ready(p))
        status["terminating"] = terminating
        if not status["active"]:
            status.pop("active")
        for key in ("succeeded", "failed"):
            if not status.get(key):
                status.pop(key, None)
        if finishing is not None and not self.uncounted_ok and not self.uncounted_failed and not terminating:
            final = "Failed" if finishing[0] == "FailureTarget" else "Complete"
            status["conditions"], changed = ju.ensure_condition(status.get("conditions") or [], final, "True",
                                                                finishing[1], finishing[2], self.now)
            if final == "Complete":
                status["completionTime"] = ju.rfc3339(self.now)
                self.ctl.event(self.job, "Normal", "Completed", "Job completed")
            elif changed:
                self.ctl.event(self.job, "Warning", finishing[1], finishing[2])
        elif finishing is not None:
            self.requeue.append(1.0)  # pods still terminating or uncounted: their events come, this is a net
        if await self._write(status) is None:
            return None
        return min(self.requeue) if self.requeue else None

    # --- steps -------------------------------------------------------------------------------------------

    def _countable(self, pod: dict) -> bool:
        if not self.indexed:
            return True
        index = ju.completion_index(pod)
        return index is not None and index < int(self.completions or 0)

    def _counts_as_failed(self, pod: dict) -> bool:
        if not self._countable(pod):
            return False
        policy = self.spec.get("podFailurePolicy")
        if policy is None or status_of(pod).get("phase") != "Failed":
            return True
        return ju.match_pod_failure_policy(policy, pod)[1]

    def _newly_finished(self) -> tuple[list[dict], list[dict], str | None]:
        """Pods finished since the last count (still holding the finalizer, not yet uncounted): succeeded,
        failed ones that count, and the first FailJob message of the pod failure policy."""
        new_ok, new_failed, message = [], [], None
        policy = self.spec.get("podFailurePolicy")
        for pod in self.pods:
            uid = pod["metadata"]["uid"]
            if not ju.has_finalizer(pod) or uid in self.uncounted_ok or uid in self.uncounted_failed:
                continue
            if ju.is_succeeded(pod):
                new_ok.append(pod)
            elif ju.is_failed(pod, self.job) and self._countable(pod):
                if policy is not None and status_of(pod).get("phase") == "Failed":
                    message = message or ju.match_pod_failure_policy(policy, pod)[0]
                if self._counts_as_failed(pod):
                    new_failed.append(pod)
        return new_ok, new_failed, message

    def _record_backoff(self, new_ok: list[dict], new_failed: list[dict]) -> None:
        uid = self.job["metadata"]["uid"]
        failures, last = self.ctl._backoff.get(uid, (0, None))
        self.ctl._backoff[uid] = ju.next_backoff_record(
            failures, last, [ju.finished_time(p, self.now) for p in new_ok],
            [ju.finished_time(p, self.now) for p in new_failed])

    def _succeeded_indexes(self, new_ok: list[dict]) -> set[int]:
        if not self.indexed:
            return set()
        completions = int(self.completions or 0)
        indexes = ju.parse_indexes(self.status.get("completedIndexes"), completions)
        for pod in new_ok:
            index = ju.completion_index(pod)
            if index is not None and index < completions:
                indexes.add(index)
        return indexes

    def _suspend_condition(self, suspended: bool) -> None:
        conditions = self.status.get("conditions") or []
        if suspended:
            conditions, changed = ju.ensure_condition(conditions, "Suspended", "True", "JobSuspended",
                                                      "Job suspended", self.now)
            if changed:
                self.ctl.event(self.job, "Normal", "Suspended", "Job suspended")
        else:
            conditions, changed = ju.ensure_condition(conditions, "Suspended", "False", "JobResumed",
                                                      "Job resumed", self.now)
            if changed:
                self.ctl.event(self.job, "Normal", "Resumed", "Job resumed")
                # activeDeadlineSeconds counts continuous activity: a resumed Job starts its clock again.
                self.status["startTime"] = ju.rfc3339(self.now)
        self.status["conditions"] = conditions

    def _finishing_condition(self, fail_message: str | None, failed: int, succeeded: int,
                             active: list[dict]) -> tuple[str, str, str] | None:
        for kind in ("FailureTarget", "SuccessCriteriaMet"):
            existing = ju.condition(self.job, kind)
            if existing and existing.get("status") == "True":
                return kind, existing.get("reason", ""), existing.get("message", "")
        if fail_message:
            return "FailureTarget", ju.POD_FAILURE_POLICY, fail_message
        backoff_limit = int(self.spec.get("backoffLimit", 6))
        if failed > backoff_limit or self._past_backoff_limit_on_failure(active, backoff_limit):
            return ("FailureTarget", *ju.BACKOFF_LIMIT_EXCEEDED)
        deadline = self.spec.get("activeDeadlineSeconds")
        started = parse_time(self.status.get("startTime"))
        if deadline is not None and started is not None and self.spec.get("suspend") is not True:
            remaining = started + datetime.timedelta(seconds=int(deadline)) - self.now
            if remaining.total_seconds() <= 0:
                return ("FailureTarget", *ju.DEADLINE_EXCEEDED)
            self.requeue.append(remaining.total_seconds() + 0.05)
        if self.completions is None:
            done = succeeded > 0 and not active
        else:
            done = succeeded >= int(self.completions)
        if done:
            return ("SuccessCriteriaMet", *ju.COMPLETIONS_REACHED)
        return None

    def _past_backoff_limit_on_failure(self, active: list[dict], limit: int) -> bool:
        """restartPolicy OnFailure: the kubelet restarts in place, so container restarts count as failures."""
        template_spec = (self.spec.get("template") or {}).get("spec") or {}
        if template_spec.get("restartPolicy") != "OnFailure":
            return False
        total = sum(ju.restarts(p) for p in active)
        return limit == 0 and total > 0 or total >= limit > 0

    async def _manage(self, active: list[dict], succeeded: int, succeeded_indexes: set[int]) -> list[dict]:
        parallelism = int(self.spec.get("parallelism", 1))
        if self.completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(parallelism, int(self.completions) - succeeded))
        surplus = self._surplus(active, succeeded_indexes, want)
        if surplus:
            await self.ctl.delete_pods(self.job, surplus[:ju.MAX_POD_CREATE_DELETE_PER_SYNC], keep_uncounted=False)
            gone = {p["metadata"]["uid"] for p in surplus}
            active = [p for p in active if p["metadata"]["uid"] not in gone]
        missing = want - len(active)
        if missing <= 0:
            return active
        failures, last = self.ctl._backoff.get(self.job["metadata"]["uid"], (0, None))
        wait = ju.backoff_remaining(failures, last, self.now, self.ctl.base_backoff)
        if wait > 0:
            self.requeue.append(wait)
            return active
        missing = min(missing, ju.MAX_POD_CREATE_DELETE_PER_SYNC)
        if self.indexed:
            running = {ju.completion_index(p) for p in active}
            indexes: list[int | None] = list(ju.pending_indexes(int(self.completions), succeeded_indexes,
                                                                running, missing))
        else:
            indexes = [None] * missing
        error = await self.ctl.create_pods(self.job, indexes)
        if error is not None:
            raise error
        return [p for p in self.ctl.pods.by_index("controller-uid", self.job["metadata"]["uid"]) if ju.is_active(p)]

    def _surplus(self, active: list[dict], succeeded_indexes: set[int], want: int) -> list[dict]:
        """Active pods to delete: for an Indexed Job those of finished, duplicate or unknown indexes first;
        then the newest beyond `want`."""
        surplus, keep = [], []
        seen: set[int] = set()
        for pod in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
            if self.indexed:
                index = ju.completion_index(pod)
                if index is None or index in succeeded_indexes or index in seen or index >= int(self.completions):
                    surplus.append(pod)
                    continue
                seen.add(index)
            keep.append(pod)
        if len(keep) > want:
            surplus += keep[want:]
        return surplus

    def _uncounted(self) -> dict:
        out = {}
        if self.uncounted_ok:
            out["succeeded"] = sorted(self.uncounted_ok)
        if self.uncounted_failed:
            out["failed"] = sorted(self.uncounted_failed)
        return out

    async def _write(self, status: dict) -> dict | None:
        job = await self.ctl.put_status(self.job, status)
        if job is not None:
            self.job = job
        return job
