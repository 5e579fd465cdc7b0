"""autoscaling/v2 HorizontalPodAutoscaler rules (pkg/apis/autoscaling/validation), the ones kfab's controller
relies on: the target reference, replica bounds, metric targets and scaling behavior."""

from __future__ import annotations

from kfab.objects.errors import Cause
from kfab.objects.validation.field import invalid, not_supported, required
from kfab.objects.validation.meta import as_dict

METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
TARGET_TYPES = ["AverageValue", "Utilization", "Value"]
SELECT_POLICIES = ["Disabled", "Max", "Min"]
POLICY_TYPES = ["Percent", "Pods"]
MAX_PERIOD_SECONDS, MAX_STABILIZATION_WINDOW = 1800, 3600


def validate_hpa(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes: list[Cause] = []
    ref = as_dict(spec.get("scaleTargetRef"))
    for key in ("kind", "name"):
        if not ref.get(key):
            causes.append(required(f"spec.scaleTargetRef.{key}"))
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(min_replicas, int) and min_replicas < 1:
        causes.append(invalid("spec.minReplicas", min_replicas, "must be greater than or equal to 1"))
    if not isinstance(max_replicas, int) or max_replicas < 1:
        causes.append(invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    elif isinstance(min_replicas, int) and max_replicas < min_replicas:
        causes.append(invalid("spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.get("metrics") or []):
        causes += _metric(as_dict(metric), f"spec.metrics[{i}]")
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for direction in ("scaleUp", "scaleDown"):
            if isinstance(behavior.get(direction), dict):
                causes += _rules(behavior[direction], f"spec.behavior.{direction}")
    return causes


def _metric(metric: dict, path: str) -> list[Cause]:
    kind = metric.get("type")
    if not kind:
        return [required(f"{path}.type", "must specify a metric source type")]
    if kind not in METRIC_TYPES:
        return [not_supported(f"{path}.type", kind, METRIC_TYPES)]
    if kind not in ("Resource", "ContainerResource"):
        return []
    key = "resource" if kind == "Resource" else "containerResource"
    source = metric.get(key)
    if not isinstance(source, dict):
        return [required(f"{path}.{key}", f"must populate information for the given metric source (only allowed "
                                          f"when type is {kind})")]
    causes = []
    if not source.get("name"):
        causes.append(required(f"{path}.{key}.name", "must specify a resource name"))
    target = as_dict(source.get("target"))
    target_type = target.get("type")
    where = f"{path}.{key}.target"
    if not target_type:
        causes.append(required(f"{where}.type", "must specify a metric target type"))
    elif target_type not in TARGET_TYPES:
        causes.append(not_supported(f"{where}.type", target_type, TARGET_TYPES))
    utilization = target.get("averageUtilization")
    if utilization is not None and (not isinstance(utilization, int) or utilization < 1):
        causes.append(invalid(f"{where}.averageUtilization", utilization, "must be greater than 0"))
    if target_type == "Utilization" and utilization is None:
        causes.append(required(f"{where}.averageUtilization", "must set either a target raw value or a target "
                                                              "utilization"))
    if target_type == "AverageValue" and target.get("averageValue") is None:
        causes.append(required(f"{where}.averageValue", "must set either a target raw value or a target "
                                                        "utilization"))
    return causes


def _rules(rules: dict, path: str) -> list[Cause]:
    causes = []
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int) and not 0 <= window <= MAX_STABILIZATION_WINDOW:
        causes.append(invalid(f"{path}.stabilizationWindowSeconds", window,
                              f"must be less than or equal to {MAX_STABILIZATION_WINDOW}" if window > 0
                              else "must be greater than or equal to zero"))
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        causes.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    policies = rules.get("policies")
    if policies is not None and not policies:
        causes.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies or []):
        policy, where = as_dict(policy), f"{path}.policies[{i}]"
        if policy.get("type") not in POLICY_TYPES:
            causes.append(not_supported(f"{where}.type", policy.get("type"), POLICY_TYPES))
        value, period = policy.get("value"), policy.get("periodSeconds")
        if not isinstance(value, int) or value <= 0:
            causes.append(invalid(f"{where}.value", value, "must be greater than zero"))
        if not isinstance(period, int) or period <= 0:
            causes.append(invalid(f"{where}.periodSeconds", period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            causes.append(invalid(f"{where}.periodSeconds", period,
                                  f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return causes
