"""Table columns for autoscaling/v2 HorizontalPodAutoscaler, as kube-apiserver's printHorizontalPodAutoscaler."""

from __future__ import annotations

from datetime import datetime

from kfab.objects.cells import age_column, age_of, column, name_column, name_of
from kfab.objects.meta import spec_of, status_of

MAX_SHOWN_METRICS = 4

HPA_COLUMNS = [
    name_column(),
    column("Reference", description="Reference to the target object"),
    column("Targets", description="The target and current values of the metrics"),
    column("MinPods", description="Lower limit for the number of pods that can be set by the autoscaler, default 1."),
    column("MaxPods", "integer", "Upper limit for the number of pods that can be set by the autoscaler; cannot be "
                                 "smaller than MinReplicas."),
    column("Replicas", "integer", "Current number of replicas of pods managed by this autoscaler."),
    age_column(),
]


def targets(spec_metrics: list, statuses: list) -> str:
    shown = []
    for i, metric in enumerate(spec_metrics[:MAX_SHOWN_METRICS]):
        if metric.get("type") != "Resource":
            shown.append("<unknown>/<unknown>")
            continue
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        current = ((statuses[i] if i < len(statuses) else {}).get("resource") or {}).get("current") or {}
        if target.get("averageValue") is not None:
            now = current.get("averageValue", "<unknown>")
            shown.append(f"{resource.get('name')}: {now}/{target['averageValue']}")
        else:
            now = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else "<unknown>"
            goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
            shown.append(f"{resource.get('name')}: {now}/{goal}")
    text = ", ".join(shown) or "<none>"
    if len(spec_metrics) > MAX_SHOWN_METRICS:
        text += f" + {len(spec_metrics) - MAX_SHOWN_METRICS} more..."
    return text


def hpa_row(obj: dict, now: datetime) -> list:
    spec, status = spec_of(obj), status_of(obj)
    ref = spec.get("scaleTargetRef") or {}
    min_pods = spec.get("minReplicas")
    return [name_of(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            targets(spec.get("metrics") or [], status.get("currentMetrics") or []),
            "<unset>" if min_pods is None else str(min_pods), int(spec.get("maxReplicas") or 0),
            int(status.get("currentReplicas") or 0), age_of(obj, now)]


PRINTERS = {"HorizontalPodAutoscaler": (HPA_COLUMNS, hpa_row)}
