"""autoscaling/v1 HorizontalPodAutoscaler as a view of the stored autoscaling/v2 object, both ways, as
kube-apiserver converts them (pkg/apis/autoscaling/v1/conversion.go).

v1 says only `targetCPUUtilizationPercentage` and `currentCPUUtilizationPercentage`. What else v2 holds travels in
annotations so that a v1 client reading and writing an object back loses nothing: the other metrics and the
current metrics in v1's MetricSpec/MetricStatus shapes (`metricName`, `targetAverageValue`, ...), the conditions,
and the behavior the way upstream writes it (its internal Go struct marshalled without JSON tags, so the keys are
the Go field names: `ScaleUp`, `StabilizationWindowSeconds`, ...; read back case-insensitively as encoding/json
does). A v2 object never shows those annotations. Malformed annotation values are ignored.
"""

from __future__ import annotations

import copy
import json

V1, V2, KIND = "autoscaling/v1", "autoscaling/v2", "HorizontalPodAutoscaler"
METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP = (METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR)
DEFAULT_CPU_UTILIZATION = 80  # v1's implicit target when it names none


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))  # as Go's json.Marshal


def _loads(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _without_round_trip(meta: dict) -> dict:
    meta = copy.deepcopy(meta)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ROUND_TRIP}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return meta


def drop_round_trip(obj: dict) -> dict:
    """A v2 object as stored: the v1 round-trip annotations have no meaning there."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if not any(k in annotations for k in ROUND_TRIP):
        return obj
    return dict(obj, metadata=_without_round_trip(obj["metadata"]))


def _some(**fields) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def _is_cpu(metric: dict, part: str) -> bool:
    resource = metric.get("resource") or {}
    return metric.get("type") == "Resource" and resource.get("name") == "cpu" and \
        (resource.get(part) or {}).get("averageUtilization") is not None


# --- metrics: v2 <-> v1's v2beta1-like shapes ----------------------------------------------------------------

def _ref(r: dict | None) -> dict:
    r = r or {}
    return _some(kind=r.get("kind", ""), name=r.get("name", ""), apiVersion=r.get("apiVersion"))


def _name(src: dict) -> str:
    return (src.get("metric") or {}).get("name", "")


def _selector(src: dict) -> dict | None:
    return (src.get("metric") or {}).get("selector")


def _to_v1(m: dict, part: str) -> dict:
    """A v2 MetricSpec (part "target") or MetricStatus (part "current") in v1's shape, whose fields are named
    target*/current*; where Go's v1 field is a plain Quantity, an absent value shows as "0"."""
    status = part == "current"
    zero = "0" if status else None  # resource averageValue and external value: Quantity in status, *Quantity in spec
    out = {"type": m.get("type", "")}
    if m.get("object"):
        o, v = m["object"], m["object"].get(part) or {}
        out["object"] = _some(target=_ref(o.get("describedObject")), metricName=_name(o),
                              **{f"{part}Value": v.get("value", "0")}, selector=_selector(o),
                              averageValue=v.get("averageValue"))
    if m.get("pods"):
        p, v = m["pods"], m["pods"].get(part) or {}
        out["pods"] = _some(metricName=_name(p), **{f"{part}AverageValue": v.get("averageValue", "0")},
                            selector=_selector(p))
    for key in ("resource", "containerResource"):
        if m.get(key):
            r, v = m[key], m[key].get(part) or {}
            out[key] = _some(name=r.get("name", ""), **{f"{part}AverageUtilization": v.get("averageUtilization"),
                                                        f"{part}AverageValue": v.get("averageValue", zero)},
                             container=r.get("container", "") if key == "containerResource" else None)
    if m.get("external"):
        e, v = m["external"], m["external"].get(part) or {}
        out["external"] = _some(metricName=_name(e), metricSelector=_selector(e),
                                **{f"{part}Value": v.get("value", zero), f"{part}AverageValue": v.get("averageValue")})
    return out


def _metric_id(src: dict, selector_key: str = "selector") -> dict:
    return _some(name=src.get("metricName", ""), selector=src.get(selector_key))


def _spec_to_v2(m: dict) -> dict:
    out = {"type": m.get("type", "")}
    if m.get("object"):
        o = m["object"]
        out["object"] = {"describedObject": _ref(o.get("target")), "metric": _metric_id(o), "target": _some(
            type="Value" if o.get("averageValue") is None else "AverageValue", value=o.get("targetValue", "0"),
            averageValue=o.get("averageValue"))}
    if m.get("pods"):
        p = m["pods"]
        out["pods"] = {"metric": _metric_id(p),
                       "target": {"type": "AverageValue", "averageValue": p.get("targetAverageValue", "0")}}
    for key in ("resource", "containerResource"):
        if m.get(key):
            r = m[key]
            out[key] = _some(name=r.get("name", ""), container=r.get("container", "") if key != "resource" else None,
                             target=_some(type="AverageValue" if r.get("targetAverageUtilization") is None
                                          else "Utilization", averageUtilization=r.get("targetAverageUtilization"),
                                          averageValue=r.get("targetAverageValue")))
    if m.get("external"):
        e = m["external"]
        out["external"] = {"metric": _metric_id(e, "metricSelector"), "target": _some(
            type="AverageValue" if e.get("targetValue") is None else "Value", value=e.get("targetValue"),
            averageValue=e.get("targetAverageValue"))}
    return out


def _status_to_v2(m: dict) -> dict:
    out = {"type": m.get("type", "")}
    if m.get("object"):
        o = m["object"]
        out["object"] = {"describedObject": _ref(o.get("target")), "metric": _metric_id(o),
                         "current": _some(value=o.get("currentValue", "0"), averageValue=o.get("averageValue"))}
    if m.get("pods"):
        p = m["pods"]
        out["pods"] = {"metric": _metric_id(p), "current": {"averageValue": p.get("currentAverageValue", "0")}}
    for key in ("resource", "containerResource"):
        if m.get(key):
            r = m[key]
            out[key] = _some(name=r.get("name", ""), container=r.get("container", "") if key != "resource" else None,
                             current=_some(averageUtilization=r.get("currentAverageUtilization"),
                                           averageValue=r.get("currentAverageValue", "0")))
    if m.get("external"):
        e = m["external"]
        out["external"] = {"metric": _metric_id(e, "metricSelector"), "current": _some(
            value=e.get("currentValue", "0"), averageValue=e.get("currentAverageValue"))}
    return out


# --- behavior: upstream's annotation holds Go field names ----------------------------------------------------

_GO_NAMES = {"scaleUp": "ScaleUp", "scaleDown": "ScaleDown", "stabilizationWindowSeconds": "StabilizationWindowSeconds",
             "selectPolicy": "SelectPolicy", "policies": "Policies", "type": "Type", "value": "Value",
             "periodSeconds": "PeriodSeconds"}
_JSON_NAMES = {go.lower(): name for name, go in _GO_NAMES.items()}


def _rename(value, names: dict, key=lambda k: k):
    if isinstance(value, dict):
        return {names.get(key(k), k): _rename(v, names, key) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_rename(v, names, key) for v in value]
    return value


def _behavior_to_annotation(behavior: dict) -> str:
    go = {"ScaleUp": None, "ScaleDown": None}
    go.update(_rename(behavior, _GO_NAMES))
    return _dumps(go)


def _behavior_from_annotation(text: str | None) -> dict | None:
    value = _loads(text)
    if not isinstance(value, dict):
        return None
    behavior = _rename(value, _JSON_NAMES, str.lower)
    return behavior or None


# --- whole objects ------------------------------------------------------------------------------------------

def to_v1(obj: dict) -> dict:
    """The stored (v2) object as autoscaling/v1 shows it."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _without_round_trip(obj.get("metadata") or {})
    metrics = spec.get("metrics") or []
    v1_spec = _some(scaleTargetRef=_ref(spec.get("scaleTargetRef")), minReplicas=spec.get("minReplicas"),
                    maxReplicas=spec.get("maxReplicas", 0))
    cpu = next((m for m in metrics if (m.get("resource") or {}).get("name") == "cpu" and m.get("type") == "Resource"),
               None)
    if cpu is not None and ((cpu["resource"].get("target") or {}).get("averageUtilization")) is not None:
        v1_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    v1_status = _some(observedGeneration=status.get("observedGeneration"), lastScaleTime=status.get("lastScaleTime"),
                      currentReplicas=status.get("currentReplicas", 0),
                      desiredReplicas=status.get("desiredReplicas", 0))
    for m in status.get("currentMetrics") or []:
        if _is_cpu(m, "current"):
            v1_status["currentCPUUtilizationPercentage"] = m["resource"]["current"]["averageUtilization"]
    annotations = {}
    others = [_to_v1(m, "target") for m in metrics if not _is_cpu(m, "target")]
    if others:
        annotations[METRICS] = _dumps(others)
    if status.get("currentMetrics"):
        annotations[CURRENT_METRICS] = _dumps([_to_v1(m, "current") for m in status["currentMetrics"]])
    if spec.get("behavior"):
        annotations[BEHAVIOR] = _behavior_to_annotation(spec["behavior"])
    if status.get("conditions"):
        annotations[CONDITIONS] = _dumps(status["conditions"])
    if annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    return {"kind": KIND, "apiVersion": V1, "metadata": meta, "spec": v1_spec, "status": v1_status}


def to_v2(obj: dict) -> dict:
    """An autoscaling/v1 object in the stored version (v2), its round-trip annotations taken back into fields."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    metrics = [_spec_to_v2(m) for m in (_loads(annotations.get(METRICS)) or []) if isinstance(m, dict)]
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(_cpu_metric(spec["targetCPUUtilizationPercentage"]))
    v2_spec = _some(scaleTargetRef=_ref(spec.get("scaleTargetRef")), minReplicas=spec.get("minReplicas"),
                    maxReplicas=spec.get("maxReplicas", 0), metrics=metrics or [_cpu_metric(DEFAULT_CPU_UTILIZATION)],
                    behavior=_behavior_from_annotation(annotations.get(BEHAVIOR)))
    current = _loads(annotations.get(CURRENT_METRICS))
    if isinstance(current, list):  # more than v1's one figure: these win
        current_metrics = [_status_to_v2(m) for m in current if isinstance(m, dict)]
    elif status.get("currentCPUUtilizationPercentage") is not None:
        current_metrics = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
    else:
        current_metrics = None
    conditions = _loads(annotations.get(CONDITIONS))
    v2_status = _some(observedGeneration=status.get("observedGeneration"), lastScaleTime=status.get("lastScaleTime"),
                      currentReplicas=status.get("currentReplicas"), desiredReplicas=status.get("desiredReplicas", 0),
                      currentMetrics=current_metrics, conditions=conditions if isinstance(conditions, list) else None)
    out = {"kind": KIND, "apiVersion": V2, "metadata": _without_round_trip(meta), "spec": v2_spec}
    if status:
        out["status"] = v2_status
    return out


def _cpu_metric(percent: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                       "averageUtilization": percent}}}
