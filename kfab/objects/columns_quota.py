"""Table columns for ResourceQuota, LimitRange (core/v1) and PriorityClass (scheduling.k8s.io/v1), following
kube-apiserver's printers (kubernetes/pkg/printers/internalversion/printers.go)."""

from __future__ import annotations

from datetime import datetime

from kfab.objects.cells import OBJECT_META, age_column, age_of, column, describe, name_column, name_of
from kfab.objects.quantity import QuantityError, parse
from kfab.objects.meta import meta_of, status_of

_SCHEDULING = "io.k8s.api.scheduling.v1.PriorityClass"

RESOURCEQUOTA_COLUMNS = [
    name_column(), age_column(),
    column("Request", description="Request represents a minimum amount of cpu/memory that a container may consume."),
    column("Limit", description="Limits control the maximum amount of cpu/memory that a container may use "
                                "independent of contention on the node."),
]
LIMITRANGE_COLUMNS = [name_column(), column("Created At", "date", describe(OBJECT_META, "creationTimestamp"))]
PRIORITYCLASS_COLUMNS = [
    name_column(),
    column("Value", "integer", describe(_SCHEDULING, "value")),
    column("Global-Default", "boolean", describe(_SCHEDULING, "globalDefault")),
    age_column(),
    column("PreemptionPolicy", description=describe(_SCHEDULING, "preemptionPolicy")),
]


def _canonical(value) -> str:
    try:
        return str(parse(value))
    except QuantityError:
        return str(value)


def resourcequota_row(obj: dict, now: datetime) -> list:
    """`pods: 1/10, requests.cpu: 500m/2` in Request, the limits.* resources in Limit (printResourceQuota)."""
    status = status_of(obj)
    hard, used = status.get("hard") or {}, status.get("used") or {}
    request, limit = [], []
    for name in sorted(hard):
        cell = f"{name}: {_canonical(used.get(name, '0'))}/{_canonical(hard[name])}"
        (limit if name.split(".")[0] == "limits" and "." in name else request).append(cell)
    return [name_of(obj), age_of(obj, now), ", ".join(request), ", ".join(limit)]


def limitrange_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), meta_of(obj).get("creationTimestamp")]


def priorityclass_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), int(obj.get("value") or 0), bool(obj.get("globalDefault")), age_of(obj, now),
            obj.get("preemptionPolicy") or ""]


PRINTERS = {
    "ResourceQuota": (RESOURCEQUOTA_COLUMNS, resourcequota_row),
    "LimitRange": (LIMITRANGE_COLUMNS, limitrange_row),
    "PriorityClass": (PRIORITYCLASS_COLUMNS, priorityclass_row),
}
