"""Per-kind table columns and cells, following kube-apiserver's printers
(kubernetes/pkg/printers/internalversion/printers.go), so `kubectl get` looks the way users know it.

Each printer is (column definitions, row(obj, now) -> cells). Integers stay integers in cells, as in Go.
"""

from __future__ import annotations

from datetime import datetime

from kfab.objects import columns_autoscaling  # autoscaling/v2
from kfab.objects import columns_batch, columns_core  # batch/v1; core/v1 and the smaller groups
from kfab.objects import columns_networking  # networking.k8s.io/v1
from kfab.objects import columns_policy  # policy/v1
from kfab.objects import columns_quota  # ResourceQuota, LimitRange, PriorityClass
from kfab.objects.cells import (
    age_column, age_of, column, container_cells, describe, format_labels, format_selector, name_column, name_of,
    selector_string, since,
)
from kfab.objects.meta import meta_of, spec_of, status_of

_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."


def _meta(obj: dict) -> dict:
    return meta_of(obj)


def _spec(obj: dict) -> dict:
    return spec_of(obj)


def _status(obj: dict) -> dict:
    return status_of(obj)


# --- Pods -------------------------------------------------------------------------------------------------

POD_COLUMNS = [
    name_column(),
    column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    column("Status", description="The aggregate status of the containers in this pod."),
    column("Restarts", description="The number of times the containers in this pod have been restarted and when "
                                   "the last container in this pod has restarted."),
    age_column(),
    column("IP", priority=1, description=describe(_CORE + "PodStatus", "podIP")),
    column("Node", priority=1, description=describe(_CORE + "PodSpec", "nodeName")),
    column("Nominated Node", priority=1, description=describe(_CORE + "PodStatus", "nominatedNodeName")),
    column("Readiness Gates", priority=1, description=describe(_CORE + "PodSpec", "readinessGates")),
]


def _later(current: str | None, candidate: str | None) -> str | None:
    if candidate and (current is None or candidate > current):  # RFC 3339 UTC strings sort by time
        return candidate
    return current


def _condition_true(status: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_row(pod: dict, now: datetime) -> list:
    """printPod: READY, STATUS (the reason kubectl shows), RESTARTS with the last restart's age."""
    spec, status = _spec(pod), _status(pod)
    restartable = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(restartable)
    ready = restarts = sidecar_restarts = 0
    last_restart = last_sidecar_restart = None
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    for i, cs in enumerate(init_statuses):
        state, finished = cs.get("state") or {}, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        restarts += cs.get("restartCount", 0)
        last_restart = _later(last_restart, finished)
        is_sidecar = cs.get("name") in restartable
        if is_sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += cs.get("restartCount", 0)
            last_restart = _later(last_restart, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({since(last_restart, now)} ago)"

    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        gates_cell = f"{sum(conditions.get(g.get('conditionType')) == 'True' for g in gates)}/{len(gates)}"
    return [name_of(pod), f"{ready}/{total}", reason, restarts_cell, age_of(pod, now),
            pod_ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_cell]


# --- Workloads --------------------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    name_column(),
    column("Ready", description="Number of the pod with ready state"),
    column("Up-to-date", description=describe(_APPS + "DeploymentStatus", "updatedReplicas")),
    column("Available", description=describe(_APPS + "DeploymentStatus", "availableReplicas")),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
    column("Selector", priority=1, description=describe(_APPS + "DeploymentSpec", "selector")),
]


def _template_spec(obj: dict) -> dict:
    return ((_spec(obj).get("template") or {}).get("spec")) or {}


def deployment_row(obj: dict, now: datetime) -> list:
    spec, status = _spec(obj), _status(obj)
    names, images = container_cells(_template_spec(obj))
    return [name_of(obj), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age_of(obj, now),
            names, images, selector_string(spec.get("selector"))]


REPLICASET_COLUMNS = [
    name_column(),
    column("Desired", "integer", describe(_APPS + "ReplicaSetSpec", "replicas")),
    column("Current", "integer", describe(_APPS + "ReplicaSetStatus", "replicas")),
    column("Ready", "integer", describe(_APPS + "ReplicaSetStatus", "readyReplicas")),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
    column("Selector", priority=1, description=describe(_APPS + "ReplicaSetSpec", "selector")),
]


def replicaset_row(obj: dict, now: datetime) -> list:
    spec, status = _spec(obj), _status(obj)
    names, images = container_cells(_template_spec(obj))
    return [name_of(obj), spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0),
            age_of(obj, now), names, images, format_selector(spec.get("selector"))]


STATEFULSET_COLUMNS = [
    name_column(),
    column("Ready", description="Number of the pod with ready state"),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
]


def statefulset_row(obj: dict, now: datetime) -> list:
    names, images = container_cells(_template_spec(obj))
    return [name_of(obj), f"{_status(obj).get('readyReplicas', 0)}/{_spec(obj).get('replicas', 1)}", age_of(obj, now),
            names, images]


DAEMONSET_COLUMNS = [
    name_column(),
    column("Desired", "integer", describe(_APPS + "DaemonSetStatus", "desiredNumberScheduled")),
    column("Current", "integer", describe(_APPS + "DaemonSetStatus", "currentNumberScheduled")),
    column("Ready", "integer", describe(_APPS + "DaemonSetStatus", "numberReady")),
    column("Up-to-date", "integer", describe(_APPS + "DaemonSetStatus", "updatedNumberScheduled")),
    column("Available", "integer", describe(_APPS + "DaemonSetStatus", "numberAvailable")),
    column("Node Selector", description=describe(_CORE + "PodSpec", "nodeSelector")),
    age_column(),
    column("Containers", priority=1, description=_CONTAINERS),
    column("Images", priority=1, description=_IMAGES),
    column("Selector", priority=1, description=describe(_APPS + "DaemonSetSpec", "selector")),
]


def daemonset_row(obj: dict, now: datetime) -> list:
    status, pod_spec = _status(obj), _template_spec(obj)
    names, images = container_cells(pod_spec)
    return [name_of(obj), status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            format_labels(pod_spec.get("nodeSelector")), age_of(obj, now), names, images,
            format_selector(_spec(obj).get("selector"))]


CONTROLLERREVISION_COLUMNS = [
    name_column(),
    column("Controller", description="Controller of the object"),
    column("Revision", description=describe(_APPS + "ControllerRevision", "revision")),
    age_column(),
]


def controllerrevision_row(obj: dict, now: datetime) -> list:
    controller = "<none>"
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            group = ref.get("apiVersion", "").rpartition("/")[0]
            kind = f"{ref.get('kind', '')}.{group}" if group else ref.get("kind", "")
            controller = f"{kind.lower()}/{ref.get('name', '')}"
            break
    return [name_of(obj), controller, obj.get("revision", 0), age_of(obj, now)]


# --- Registry of printers (the rest are in columns_core) ----------------------------------------------------

PRINTERS: dict[str, tuple[list[dict], object]] = {
    "Pod": (POD_COLUMNS, pod_row),
    "Deployment": (DEPLOYMENT_COLUMNS, deployment_row),
    "ReplicaSet": (REPLICASET_COLUMNS, replicaset_row),
    "StatefulSet": (STATEFULSET_COLUMNS, statefulset_row),
    "DaemonSet": (DAEMONSET_COLUMNS, daemonset_row),
    "ControllerRevision": (CONTROLLERREVISION_COLUMNS, controllerrevision_row),
    **columns_autoscaling.PRINTERS,
    **columns_batch.PRINTERS,
    **columns_core.PRINTERS,
    **columns_networking.PRINTERS,
    **columns_policy.PRINTERS,
    **columns_quota.PRINTERS,
}
