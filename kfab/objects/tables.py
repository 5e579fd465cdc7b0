"""Server-side Tables (meta.k8s.io/v1 Table), what `kubectl get` asks for and prints.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns the server
returns, upper-cased; priority-1 columns only with `-o wide`. Like kube-apiserver (which always renders with
Wide=true), every row carries every cell; the per-kind printers live in `kfab.objects.columns`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kfab.objects.cells import OBJECT_META, column, describe, name_column, parse_time
from kfab.objects import conversion
from kfab.objects.columns import PRINTERS
from kfab.objects.crd_columns import custom_printer
from kfab.objects.errors import bad_request
from kfab.objects.registry import ResourceType
from kfab.objects.meta import status_of

INCLUDE_OBJECT = ("None", "Metadata", "Object")


def partial_object_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def _default_printer():
    # kube-apiserver's defaultTableConvertor, for kinds without a printer (Role, ClusterRole, ...).
    columns = [name_column(), column("Created At", "date", describe(OBJECT_META, "creationTimestamp"))]

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
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(f"includeObject must be one of {', '.join(INCLUDE_OBJECT)}; got {include_object!r}")
    now = now or datetime.now(timezone.utc)
    if rt.custom is not None:
        columns, print_row = custom_printer(rt)
    else:
        columns, print_row = PRINTERS.get(rt.kind) or _default_printer()
    rows = []
    for obj in objects:
        row: dict = {"cells": print_row(conversion.to_stored(obj), now)}  # printers read the stored version
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
    phase = status_of(obj).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []
