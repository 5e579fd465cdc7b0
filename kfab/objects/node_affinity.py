"""nodeSelector and required node affinity of a pod against a Node (k8s.io/component-helpers/scheduling/
corev1/nodeaffinity): shared by the scheduler, which filters nodes by it, and the DaemonSet controller, which
decides by it which nodes run a daemon pod."""

from __future__ import annotations
from kfab.objects.meta import meta_of, spec_of


def match_expression(expr: dict, labels: dict) -> bool:
    """One NodeSelectorRequirement: In, NotIn, Exists, DoesNotExist, Gt, Lt."""
    key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
    present = key in labels
    value = labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def match_term(term: dict, node: dict) -> bool:
    """A NodeSelectorTerm: all matchExpressions (labels) and matchFields (metadata.name); empty matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = meta_of(node).get("labels") or {}
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return (all(match_expression(e, labels) for e in exprs)
            and all(match_expression(f, node_fields) for f in fields))


def matches_node_selector_and_affinity(pod: dict, node: dict) -> bool:
    spec = spec_of(pod)
    labels = meta_of(node).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is not None:
        # The terms are ORed; no terms at all matches no node.
        return any(match_term(t, node) for t in required.get("nodeSelectorTerms") or [])
    return True
