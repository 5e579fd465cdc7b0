"""policy/v1 rules: PodDisruptionBudget (pkg/apis/policy/validation)."""

from __future__ import annotations

from kfab.objects.errors import Cause
from kfab.objects.validation.apps import validate_int_or_percent
from kfab.objects.validation.field import child, invalid, not_supported
from kfab.objects.validation.meta import as_dict, validate_label_selector

UNHEALTHY_POD_EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]


def validate_pod_disruption_budget(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        value = spec.get(key)
        if value is None:
            continue
        causes += validate_int_or_percent(value, child("spec", key), at_most_100_percent=True)
    if spec.get("selector") is not None:
        causes += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        causes.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))
    return causes
