"""Server-side Tables (meta.k8s.io/v1 Table), what `kubectl get` asks for and prints.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns the server
returns, upper-cased; priority-1 columns only with `-o wide`. Like kube-apiserver (which always renders with
Wide=true), every row carries every cell; the per-kind printers live in `kfab.objects.columns`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kfab.api.errors import bad_request
from kfab.objects import schema_defs
from kfab.objects.crd_columns import custom_printer
from kfab.objects.registry import ResourceType

INCLUDE_OBJECT = ("None", "Metadata", "Object")
_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def describe(definition: str, field: str) -> str:
    """The published description of a field, as kube-apiserver fills columnDefinitions from SwaggerDoc()."""
    schema = schema_defs.definitions().get(definition, {})
    return schema.get("properties", {}).get(field, {}).get("description", "")


def column(name: str, type_: str = "string", description: str = "", priority: int = 0, format_: str = "") -> dict:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def name_column() -> dict:
    return column("Name", format_="name", description=describe(_META, "name"))


def age_column() -> dict:
    return column("Age", description=describe(_META, "creationTimestamp"))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: `5s`, `3m2s`, `15m`, `5h3m`, `2d3h`, `400d`, `3y20d`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def since(value: str | None, now: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` when unset."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return human_duration((now - when).total_seconds())


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def age_of(obj: dict, now: datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def format_labels(labels: dict | None) -> str:
    """labels.FormatLabels: `a=b,c=d` sorted by key, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: dict | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key, `` for nil or empty."""
    if not selector:
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
        if op == "In":
            parts.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            parts.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            parts.append((key, key))
        elif op == "DoesNotExist":
            parts.append((key, f"!{key}"))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def format_selector(selector: dict | None) -> str:
    """metav1.FormatLabelSelector: like selector_string, but `<none>` when it selects nothing in particular."""
    return selector_string(selector) or "<none>"


def container_cells(pod_spec: dict | None) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma-separated."""
    containers = (pod_spec or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


def partial_object_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def _default_printer():
    # kube-apiserver's defaultTableConvertor, for kinds without a printer (Role, ClusterRole, ...).
    columns = [name_column(), column("Created At", "date", describe(_META, "creationTimestamp"))]

    def row(obj: dict, now: datetime) -> list:
        created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
        stamp = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
        return [obj.get("metadata", {}).get("name", ""), stamp]

    return columns, row


def to_table(rt: ResourceType, objects: list[dict], include_object: str = "Metadata", list_meta: dict | None = None,
             *, now: datetime | None = None) -> dict:
    """A meta.k8s.io/v1 Table of `objects` (all of kind `rt`) as kube-apiserver returns it.

    include_object: None | Metadata (rows carry PartialObjectMetadata, kubectl's default) | Object.
    list_meta: the list's metadata (resourceVersion, continue, remainingItemCount); for a single get leave it
    None and the object's resourceVersion is used.
    """
    from kfab.objects.columns import PRINTERS  # the printers import this module's helpers

    if include_object not in INCLUDE_OBJECT:
        raise bad_request(f"includeObject must be one of {', '.join(INCLUDE_OBJECT)}; got {include_object!r}")
    now = now or datetime.now(timezone.utc)
    if rt.custom is not None:
        columns, print_row = custom_printer(rt)
    else:
        columns, print_row = PRINTERS.get(rt.kind) or _default_printer()
    rows = []
    for obj in objects:
        row: dict = {"cells": print_row(obj, now)}
        conditions = row_conditions(rt, obj)
        if conditions:
            row["conditions"] = conditions
        if include_object == "Metadata":
            row["object"] = partial_object_metadata(obj)
        elif include_object == "Object":
            row["object"] = obj
        rows.append(row)
    if list_meta is not None:
        metadata = {k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue", "remainingItemCount")}
    elif len(objects) == 1 and objects[0].get("metadata", {}).get("resourceVersion"):
        metadata = {"resourceVersion": objects[0]["metadata"]["resourceVersion"]}
    else:
        metadata = {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": [dict(c) for c in columns], "rows": rows}


def row_conditions(rt: ResourceType, obj: dict) -> list[dict]:
    """Finished pods are marked Completed, as kube-apiserver's pod printer does."""
    if rt.kind != "Pod":
        return []
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []
