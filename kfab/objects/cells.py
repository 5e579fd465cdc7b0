"""Helpers for table columns and cells (kube-apiserver's printers' vocabulary): column definitions with
descriptions from the OpenAPI schema, ages as kubectl prints them, selectors and labels as strings.

Used by the per-kind printers (kfab.objects.columns, columns_core) that kfab.objects.tables renders.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kfab.objects import schema_defs
from kfab.objects.meta import meta_of

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def describe(definition: str, field: str) -> str:
    """The published description of a field, as kube-apiserver fills columnDefinitions from SwaggerDoc()."""
    schema = schema_defs.definitions().get(definition, {})
    return schema.get("properties", {}).get(field, {}).get("description", "")


def column(name: str, type_: str = "string", description: str = "", priority: int = 0, format_: str = "") -> dict:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def name_column() -> dict:
    return column("Name", format_="name", description=describe(OBJECT_META, "name"))


def age_column() -> dict:
    return column("Age", description=describe(OBJECT_META, "creationTimestamp"))


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
    return meta_of(obj).get("name", "")


def age_of(obj: dict, now: datetime) -> str:
    return since(meta_of(obj).get("creationTimestamp"), now)


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
