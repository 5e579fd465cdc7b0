"""autoscaling/v2 defaults (pkg/apis/autoscaling/v2/defaults.go)."""

from __future__ import annotations

import copy

DEFAULT_CPU_UTILIZATION = 80
SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}
SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def scaling_rules(given: dict | None, defaults: dict) -> dict:
    """A behavior's scaleUp/scaleDown with what it leaves out taken from the defaults (copyHPAScalingRules)."""
    rules = copy.deepcopy(defaults)
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if isinstance(given, dict) and given.get(key) is not None:
            rules[key] = copy.deepcopy(given[key])
    return rules


def default_hpa(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):  # as upstream: only a given behavior is filled in; none means the defaults
        behavior["scaleUp"] = scaling_rules(behavior.get("scaleUp"), SCALE_UP)
        behavior["scaleDown"] = scaling_rules(behavior.get("scaleDown"), SCALE_DOWN)
