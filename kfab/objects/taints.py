"""Taints and tolerations of core/v1 (ToleratesTaint, TaintNodesByCondition): shared by the scheduler, which
filters nodes by them, and the node lifecycle controller, which evicts by them."""

from __future__ import annotations
from kfab.objects.meta import status_of

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def tolerates(toleration: dict, taint: dict) -> bool:
    """ToleratesTaint of k8s.io/api/core/v1: effect, key and (for Equal) value must match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True  # an empty key with Exists tolerates every taint
    if operator == "Equal":
        return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: list[dict], taint: dict) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def condition_taints(node: dict) -> list[dict]:
    """The NoSchedule taint a node's Ready condition implies (TaintNodesByCondition), in case the node
    lifecycle controller has not put it on the Node yet."""
    ready = None
    for cond in status_of(node).get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond.get("status")
    if ready == "True":
        return []
    key = UNREACHABLE_TAINT if ready in (None, "Unknown") else NOT_READY_TAINT
    return [{"key": key, "effect": "NoSchedule"}]
