"""A pod's status as the kubelet reports it, computed from what Podman shows (pure functions).

Every attempt of a container is its own Podman container labelled with its attempt number, so restartCount,
state and lastState all come from Podman and survive an agent restart.
"""

from __future__ import annotations

import datetime

from kfab.node.runtime import LABEL_ATTEMPT, LABEL_CONTAINER
from kfab.objects.meta import spec_of

ZERO_TIME = "0001-01-01T00:00:00Z"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    """Podman's RFC 3339 times with nanoseconds (Go's format), or None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    text = value.replace("Z", "+00:00")
    date, _, rest = text.partition(".")
    if rest:  # fromisoformat of 3.11 takes at most 6 sub-second digits; Go writes up to 9
        tz = next((i for i, ch in enumerate(rest) if ch in "+-"), len(rest))
        text = f"{date}.{rest[:tz][:6].ljust(6, '0')}{rest[tz:]}"
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def k8s_time(value: str | None) -> str | None:
    t = parse_time(value)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def attempts_by_name(containers: list[dict]) -> dict[str, list[dict]]:
    """container name -> its Podman containers, oldest attempt first."""
    out: dict[str, list[dict]] = {}
    for c in containers:
        labels = (c.get("Config") or {}).get("Labels") or {}
        out.setdefault(labels[LABEL_CONTAINER], []).append(c)
    for items in out.values():
        items.sort(key=lambda c: int(((c.get("Config") or {}).get("Labels") or {}).get(LABEL_ATTEMPT, 0)))
    return out


def attempt_of(c: dict) -> int:
    return int(((c.get("Config") or {}).get("Labels") or {}).get(LABEL_ATTEMPT, 0))


def is_running(c: dict) -> bool:
    return (c.get("State") or {}).get("Status") == "running"


def has_exited(c: dict) -> bool:
    """Ran and stopped. After a host restart Podman shows containers that had run as "created" again."""
    state = c.get("State") or {}
    if state.get("Status") in ("exited", "stopped"):
        return True
    return state.get("Status") in ("created", "configured") and parse_time(state.get("StartedAt")) is not None


def exit_code(c: dict) -> int:
    state = c.get("State") or {}
    if state.get("Status") in ("created", "configured"):
        return 137 if state.get("ExitCode", 0) == 0 else state["ExitCode"]  # killed by the host's restart
    return int(state.get("ExitCode") or 0)


def terminated_state(c: dict) -> dict:
    state = c.get("State") or {}
    code = exit_code(c)
    reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
    out = {"exitCode": code, "reason": reason, "containerID": f"podman://{c['Id']}",
           "startedAt": k8s_time(state.get("StartedAt")), "finishedAt": k8s_time(state.get("FinishedAt"))}
    return {k: v for k, v in out.items() if v is not None}


def container_status(spec: dict, attempts: list[dict], waiting: dict | None, ready: bool, started: bool) -> dict:
    """One entry of containerStatuses; `waiting` = {"reason", "message"} the worker set (pull errors, backoff)."""
    status = {"name": spec["name"], "image": spec.get("image", ""), "imageID": "", "restartCount": 0,
              "ready": False, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    if attempts:
        latest = attempts[-1]
        status["restartCount"] = attempt_of(latest)
        status["imageID"] = latest.get("Image", "")
        status["containerID"] = f"podman://{latest['Id']}"
        if is_running(latest):
            status["state"] = {"running": {"startedAt": k8s_time((latest.get("State") or {}).get("StartedAt"))}}
            status["started"] = started
            status["ready"] = ready and started
        elif has_exited(latest):
            status["state"] = {"terminated": terminated_state(latest)}
        last = latest if waiting and has_exited(latest) else \
            (attempts[-2] if len(attempts) > 1 and has_exited(attempts[-2]) else None)
        if last is not None:
            status["lastState"] = {"terminated": terminated_state(last)}
    if waiting:
        status["state"] = {"waiting": {k: v for k, v in waiting.items() if v}}
    return status


def phase(pod: dict, init_done: bool, init_failed: bool, statuses: list[dict]) -> str:
    policy = spec_of(pod).get("restartPolicy", "Always")
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    states = [s["state"] for s in statuses]
    created = all("waiting" not in st or s["restartCount"] > 0 for s, st in zip(statuses, states))
    terminated = [st.get("terminated") for st in states]
    if policy != "Always" and all(terminated):
        if all(t["exitCode"] == 0 for t in terminated):
            return "Succeeded"
        if policy == "Never":
            return "Failed"
    return "Running" if created and any("running" in st or "terminated" in st or s["restartCount"] > 0
                                        for s, st in zip(statuses, states)) else "Pending"


def condition(previous: list[dict], type_: str, ok: bool, reason: str | None = None) -> dict:
    value = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == type_), None)
    when = old["lastTransitionTime"] if old and old.get("status") == value and old.get("lastTransitionTime") \
        else now()
    out = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": when}
    if reason and not ok:
        out["reason"] = reason
    return out
