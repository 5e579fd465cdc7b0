"""Validation of ResourceQuota, LimitRange (core/v1) and PriorityClass (scheduling.k8s.io/v1), as
pkg/apis/core/validation and pkg/apis/scheduling/validation check them."""

from __future__ import annotations

from kfab.objects.errors import Cause
from kfab.objects.quantity import FORMAT_ERROR, QuantityError, parse
from kfab.objects.validation.field import child, forbidden, invalid, not_supported
from kfab.objects.validation.meta import as_dict, as_list

HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass")


def _quantities(values: object, here: str) -> list[Cause]:
    causes = []
    for name, value in as_dict(values).items():
        try:
            amount = parse(value)
        except QuantityError:
            causes.append(invalid(child(here, name), value, FORMAT_ERROR))
            continue
        if amount.value < 0:
            causes.append(invalid(child(here, name), value, "must be greater than or equal to 0"))
    return causes


def validate_resource_quota(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = _quantities(spec.get("hard"), "spec.hard")
    for i, scope in enumerate(as_list(spec.get("scopes"))):
        if scope not in QUOTA_SCOPES:
            causes.append(not_supported(child("spec.scopes", i), scope, QUOTA_SCOPES))
    return causes


def validate_limit_range(obj: dict) -> list[Cause]:
    causes = []
    for i, item in enumerate(as_list(as_dict(obj.get("spec")).get("limits"))):
        item, here = as_dict(item), child("spec.limits", i)
        if item.get("type") not in LIMIT_TYPES:
            causes.append(not_supported(child(here, "type"), item.get("type") or "", LIMIT_TYPES))
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            causes += _quantities(item.get(key), child(here, key))
        if causes:
            continue
        low, high = as_dict(item.get("min")), as_dict(item.get("max"))
        for name in set(low) & set(high):
            if parse(low[name]).value > parse(high[name]).value:
                causes.append(invalid(child(here, "min", name), low[name],
                                      f"min value {low[name]} is greater than max value {high[name]}"))
        for key in ("default", "defaultRequest"):
            for name, value in as_dict(item.get(key)).items():
                amount = parse(value).value
                if name in low and amount < parse(low[name]).value:
                    causes.append(invalid(child(here, key, name), value,
                                          f"min value {low[name]} is greater than {key} value {value}"))
                if name in high and amount > parse(high[name]).value:
                    causes.append(invalid(child(here, key, name), value,
                                          f"{key} value {value} is greater than max value {high[name]}"))
    return causes


def validate_priority_class(obj: dict) -> list[Cause]:
    name = as_dict(obj.get("metadata")).get("name") or ""
    value = obj.get("value")
    causes = []
    if not isinstance(value, int) or isinstance(value, bool):
        causes.append(invalid("value", value, "must be an integer"))
    elif name.startswith("system-"):
        if SYSTEM_PRIORITY_CLASSES.get(name) != value or obj.get("globalDefault"):
            known = ", ".join(sorted(SYSTEM_PRIORITY_CLASSES))
            causes.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved for "
                                    f"system use only. error: {name!r} is not a known system priority class "
                                    f"(known: {known}) with its value"))
    elif value > HIGHEST_USER_PRIORITY:
        causes.append(forbidden("value", f"maximum allowed value of a user defined priority is "
                                f"{HIGHEST_USER_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        causes.append(not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    return causes


def validate_priority_class_update(obj: dict, old: dict) -> list[Cause]:
    causes = []
    if obj.get("value") != old.get("value"):
        causes.append(forbidden("value", "may not be changed in an update."))
    if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
        causes.append(invalid("preemptionPolicy", obj.get("preemptionPolicy"), "field is immutable"))
    return causes
