"""Table columns of a custom resource: Name, then the CRD version's additionalPrinterColumns, each cell read
with its JSONPath as kube-apiserver's tableconvertor reads it (a CRD without columns shows Name and Age)."""

from __future__ import annotations

import functools
from datetime import datetime

from jsonpath_ng.ext import parse

from kfab.objects.cells import column, human_duration, name_column, parse_time
from kfab.objects.crd import PrinterColumn
from kfab.objects.registry import ResourceType
from kfab.objects.meta import meta_of

_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp",
                     description="CreationTimestamp is a timestamp representing the server time when this object "
                                 "was created.")
_CASTS = {"integer": int, "number": float, "boolean": bool, "string": str}


@functools.lru_cache(maxsize=512)
def _compiled(json_path: str):
    # kubectl-style paths (`.spec.replicas`, `{.spec.replicas}`) are JSONPath from the object's root
    return parse("$" + json_path.strip().removeprefix("{").removesuffix("}"))


def _cell(col: PrinterColumn, obj: dict, now: datetime):
    try:
        found = [m.value for m in _compiled(col.json_path).find(obj)]
    except Exception:  # noqa: BLE001 - a bad path shows an empty cell, as upstream does
        return None
    if not found or found[0] is None:
        return None
    value = found[0]
    if col.type == "date":
        # the tableconvertor shows dates as an age (`5m`), unknown ones as <unknown>
        when = parse_time(value) if isinstance(value, str) else None
        return human_duration((now - when).total_seconds()) if when else "<unknown>"
    cast = _CASTS.get(col.type)
    if cast is not None and not isinstance(value, (dict, list)):
        try:
            return cast(value)
        except (TypeError, ValueError):
            return None
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def custom_printer(rt: ResourceType):
    columns = rt.custom.columns or (_AGE,)
    definitions = [name_column()] + [column(c.name, c.type, c.description, c.priority, c.format) for c in columns]

    def row(obj: dict, now: datetime) -> list:
        return [meta_of(obj).get("name", "")] + [_cell(c, obj, now) for c in columns]

    return definitions, row
