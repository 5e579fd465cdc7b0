"""Deployment status and conditions (kubernetes/pkg/controller/deployment/sync.go, progress.go): replica counts
from the pods, Available (at least replicas - maxUnavailable available), Progressing (new ReplicaSet created /
progressing / complete / ProgressDeadlineExceeded, paused / resumed)."""

from __future__ import annotations

import copy
import datetime

from kfab.controllers import deployment_util as du
from kfab.machinery.controller import now_rfc3339, parse_time
from kfab.objects.meta import spec_of, status_of

NO_DEADLINE = 2147483647  # progressDeadlineSeconds = MaxInt32 means "no deadline", as kube


class StatusMixin:
    """Methods of DeploymentController (pod_counts, available_of, write_status are in deployment.py)."""

    @staticmethod
    def has_deadline(d: dict) -> bool:
        deadline = spec_of(d).get("progressDeadlineSeconds")
        return deadline is not None and int(deadline) != NO_DEADLINE

    def calculate_status(self, d: dict, rs_list: list[dict], new_rs: dict | None) -> dict:
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        replicas = int(d["spec"].get("replicas", 1))
        actual = lambda rs: self.pod_counts(rs, min_ready)[0]  # noqa: E731
        available = sum(self.available_of(rs, min_ready) for rs in rs_list)
        total = sum(du.replicas_of(rs) for rs in rs_list)
        status = copy.deepcopy(status_of(d))
        status.update({
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(actual(rs) for rs in rs_list),
            "updatedReplicas": actual(new_rs) if new_rs else 0,
            "readyReplicas": sum(self.pod_counts(rs, min_ready)[1] for rs in rs_list),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
        })
        for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[field]:
                status.pop(field)  # kube omits zero counts
        now = now_rfc3339()
        if available >= replicas - du.max_unavailable(d):
            du.set_condition(status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum "
                             "availability.", now)
        else:
            du.set_condition(status, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have "
                             "minimum availability.", now)
        return status

    async def sync_status_only(self, d: dict, rs_list: list[dict]) -> None:
        new_rs, _ = self.new_and_old(d, rs_list)
        status = self.calculate_status(d, rs_list, new_rs)
        if _status_changed(d.get("status") or {}, status):
            await self.write_status(d, status)

    async def sync_rollout_status(self, d: dict, rs_list: list[dict], new_rs: dict | None) -> float | None:
        """Status plus the Progressing condition; returns when to look again for the progress deadline."""
        old_status = status_of(d)
        status = self.calculate_status(d, rs_list, new_rs)
        now = now_rfc3339()
        name = new_rs["metadata"]["name"] if new_rs else ""
        if self.has_deadline(d) and not d["spec"].get("paused"):
            current = du.condition(status, "Progressing")
            complete_before = (status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None
                               and current.get("reason") == "NewReplicaSetAvailable")
            if not complete_before:
                if du.is_complete(d, status):
                    du.set_condition(status, "Progressing", "True", "NewReplicaSetAvailable",
                                     f'ReplicaSet "{name}" has successfully progressed.', now)
                elif du.is_progressing(old_status, status):
                    du.set_condition(status, "Progressing", "True", "ReplicaSetUpdated",
                                     f'ReplicaSet "{name}" is progressing.', now)
                    _touch(status, "Progressing", now)
                elif self.timed_out(d, status):
                    du.set_condition(status, "Progressing", "False", "ProgressDeadlineExceeded",
                                     f'ReplicaSet "{name}" has timed out progressing.', now)
                    self.event(d, "Warning", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{name}" has timed out progressing.')
        if _status_changed(old_status, status):
            await self.write_status(d, status)
        return self.requeue_for_deadline(d, status)

    def timed_out(self, d: dict, status: dict) -> bool:
        cond = du.condition(status, "Progressing")
        if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return False

        deadline = since + datetime.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
        return datetime.datetime.now(datetime.timezone.utc) > deadline

    def requeue_for_deadline(self, d: dict, status: dict) -> float | None:
        cond = du.condition(status, "Progressing")
        if not self.has_deadline(d) or cond is None or du.is_complete(d, status) or d["spec"].get("paused"):
            return None
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return None
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return None

        left = (since + datetime.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
                - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return max(left, 0.0) + 1.0

    async def check_paused_condition(self, d: dict) -> None:
        if not self.has_deadline(d):
            return
        status = copy.deepcopy(status_of(d))
        cond = du.condition(status, "Progressing")
        paused = bool(d["spec"].get("paused"))
        if paused and not (cond and cond.get("reason") == "DeploymentPaused"):
            du.set_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                             now_rfc3339())
        elif not paused and cond and cond.get("reason") == "DeploymentPaused":
            du.set_condition(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed",
                             now_rfc3339())
        else:
            return
        await self.write_status(d, status)


def _touch(status: dict, type_: str, now: str) -> None:
    cond = du.condition(status, type_)
    if cond is not None:
        cond["lastUpdateTime"] = now


def _status_changed(old: dict, new: dict) -> bool:
    """Differences other than condition timestamps alone (which would make every sync a write)."""
    def strip(s: dict) -> dict:
        s = dict(s)
        s["conditions"] = [{k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
                           for c in s.get("conditions") or []]
        return s
    if strip(old) != strip(new):
        return True
    old_c = {c["type"]: c.get("lastUpdateTime") for c in old.get("conditions") or []}
    return any(c.get("reason") == "ReplicaSetUpdated" and old_c.get(c["type"]) != c.get("lastUpdateTime")
               for c in new.get("conditions") or [])
