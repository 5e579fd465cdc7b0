"""How a hollow node's pod "runs" when it is meant to finish (restartPolicy Never or OnFailure, e.g. a Job's
pods): its containers exit after a while, so Job and CronJob controllers can be tried and benchmarked on
hollow nodes. Pods with restartPolicy Always run until deleted, as before.

Annotations on the pod (or its Job's pod template) choose how:
- `kfab.io/hollow-run-seconds`: how long the containers run before they exit (default 1);
- `kfab.io/hollow-exit-code`: their exit code (default 0). With OnFailure a non-zero exit restarts the
  containers in place (restartCount + 1), as a kubelet does; with Never the pod ends Failed.
"""

from __future__ import annotations
from kfab.objects.meta import meta_of, spec_of, status_of

RUN_SECONDS = "kfab.io/hollow-run-seconds"
EXIT_CODE = "kfab.io/hollow-exit-code"
DEFAULT_RUN_SECONDS = 1.0


def _annotation(pod: dict, key: str) -> str | None:
    return (meta_of(pod).get("annotations") or {}).get(key)


def run_seconds(pod: dict) -> float | None:
    """Seconds the containers run before they exit; None for pods that run until deleted."""
    if spec_of(pod).get("restartPolicy", "Always") == "Always":
        return None
    try:
        return max(0.0, float(_annotation(pod, RUN_SECONDS) or DEFAULT_RUN_SECONDS))
    except ValueError:
        return DEFAULT_RUN_SECONDS


def exit_code(pod: dict) -> int:
    try:
        return int(_annotation(pod, EXIT_CODE) or 0)
    except ValueError:
        return 1


def _terminated(code: int, started: str, now: str) -> dict:
    return {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": started,
            "finishedAt": now}


def exited_status(pod: dict, now: str) -> dict:
    """The pod's status once its containers exited: Succeeded/Failed, or (OnFailure, non-zero exit) running
    again after an in-place restart."""
    status = dict(status_of(pod))
    code = exit_code(pod)
    restart = code != 0 and spec_of(pod).get("restartPolicy") == "OnFailure"
    containers = []
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or now
        cs = dict(cs)
        if restart:
            cs.update(restartCount=int(cs.get("restartCount") or 0) + 1, lastState={"terminated": _terminated(
                code, started, now)}, state={"running": {"startedAt": now}})
        else:
            cs.update(ready=False, started=False, state={"terminated": _terminated(code, started, now)})
        containers.append(cs)
    status["containerStatuses"] = containers
    if restart:
        return status
    status["phase"] = "Succeeded" if code == 0 else "Failed"
    conditions = []
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            c = dict(c, status="False", reason="PodCompleted", lastTransitionTime=now)
        conditions.append(c)
    status["conditions"] = conditions
    return status
