"""PodDisruptionBudget facts shared by the eviction subresource (kfab.api.eviction) and the disruption
controller (kfab.controllers.disruption): which pods a budget guards and its DisruptionAllowed condition
(k8s.io/component-helpers/apps/poddisruptionbudget)."""

from __future__ import annotations

import datetime

from kfab.objects.selectors import selector_from_object
from kfab.objects.meta import meta_of, spec_of, status_of

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS, INSUFFICIENT_PODS, SYNC_FAILED = "SufficientPods", "InsufficientPods", "SyncFailed"
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"   # policy/v1 DisruptionBudgetCause, the 429's cause type


def guards(pdb: dict, pod: dict) -> bool:
    """The budget's selector matches the pod. As the eviction subresource does, a nil or empty selector
    guards nothing (the controller counts an empty one as every pod; kube keeps that difference)."""
    selector = spec_of(pdb).get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    try:
        return selector_from_object(selector).matches(meta_of(pod).get("labels"))
    except ValueError:
        return False   # an invalid selector matches no pod


def is_pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status_of(pod).get("conditions") or [])


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(status: dict, status_value: str, reason: str, message: str = "") -> None:
    """apimeta.SetStatusCondition for DisruptionAllowed: lastTransitionTime moves only when the status does."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != DISRUPTION_ALLOWED]
    old = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status_value else _now()
    condition = {"type": DISRUPTION_ALLOWED, "status": status_value, "lastTransitionTime": since,
                 "reason": reason, "message": message}
    if status.get("observedGeneration"):
        condition["observedGeneration"] = status["observedGeneration"]
    status["conditions"] = conditions + [condition]


def update_disruption_allowed(status: dict) -> None:
    """UpdateDisruptionAllowedCondition: True/SufficientPods while a disruption is allowed, else
    False/InsufficientPods."""
    if int(status.get("disruptionsAllowed") or 0) > 0:
        set_condition(status, "True", SUFFICIENT_PODS)
    else:
        set_condition(status, "False", INSUFFICIENT_PODS)
