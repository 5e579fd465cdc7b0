"""Table columns for policy/v1 kinds, following kube-apiserver's printers
(kubernetes/pkg/printers/internalversion/printers.go)."""

from __future__ import annotations

from datetime import datetime

from kfab.objects.cells import age_column, age_of, column, name_column, name_of
from kfab.objects.meta import spec_of, status_of

PDB_COLUMNS = [
    name_column(),
    column("Min Available", description="The minimum number of pods that must be available."),
    column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    age_column(),
]


def pdb_row(obj: dict, now: datetime) -> list:
    spec, status = spec_of(obj), status_of(obj)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [name_of(obj), "N/A" if min_available is None else str(min_available),
            "N/A" if max_unavailable is None else str(max_unavailable), int(status.get("disruptionsAllowed") or 0),
            age_of(obj, now)]


PRINTERS = {"PodDisruptionBudget": (PDB_COLUMNS, pdb_row)}
