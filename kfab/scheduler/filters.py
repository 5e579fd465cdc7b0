"""Filters: can this pod run on this node? Pure functions of (pod, NodeInfo) -> reasons it cannot ([] = fits).

The reasons are kube-scheduler's own words, because users grep for them and the scheduler aggregates them
into "0/3 nodes are available: 3 Insufficient cpu." As kube-scheduler's framework, a node is reported with
the reasons of the first filter that rejects it.
"""

from __future__ import annotations

from typing import Callable

from kfab.scheduler.nodeinfo import CPU, EPHEMERAL, MEMORY, PODS, NodeInfo, PodUsage

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
REASON_TOO_MANY_PODS = "Too many pods"


# --- tolerations and taints --------------------------------------------------------------------------

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
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond.get("status")
    if ready == "True":
        return []
    key = UNREACHABLE_TAINT if ready in (None, "Unknown") else NOT_READY_TAINT
    return [{"key": key, "effect": "NoSchedule"}]


def blocking_taints(info: NodeInfo) -> list[dict]:
    """The node's NoSchedule/NoExecute taints, those its Ready condition implies included (computed once per
    Node version: this runs for every pod against every node)."""
    taints = info.derived.get("blocking_taints")
    if taints is None:
        taints = [t for t in list((info.node.get("spec") or {}).get("taints") or []) + condition_taints(info.node)
                  if t.get("effect") in ("NoSchedule", "NoExecute")]  # PreferNoSchedule only lowers a score
        info.derived["blocking_taints"] = taints
    return taints


def check_ready_and_taints(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    taints = blocking_taints(info)
    if not taints:
        return []
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in taints:
        if not tolerated(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"]
    return []


def check_unschedulable(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    if not (info.node.get("spec") or {}).get("unschedulable"):
        return []
    taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if tolerated((pod.get("spec") or {}).get("tolerations") or [], taint):
        return []
    return [REASON_UNSCHEDULABLE]


# --- node selector and required node affinity ---------------------------------------------------------

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
    labels = (node.get("metadata") or {}).get("labels") or {}
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return (all(match_expression(e, labels) for e in exprs)
            and all(match_expression(f, node_fields) for f in fields))


def matches_node_selector_and_affinity(pod: dict, node: dict) -> bool:
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is not None:
        # The terms are ORed; no terms at all matches no node.
        return any(match_term(t, node) for t in required.get("nodeSelectorTerms") or [])
    return True


def check_node_affinity(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    spec = pod.get("spec") or {}
    if not spec.get("nodeSelector") and not spec.get("affinity"):
        return []
    return [] if matches_node_selector_and_affinity(pod, info.node) else [REASON_AFFINITY]


# --- host ports and resources --------------------------------------------------------------------------

def _ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    (ip_a, proto_a, port_a), (ip_b, proto_b, port_b) = a, b
    if port_a != port_b or proto_a != proto_b:
        return False
    return ip_a == ip_b or "0.0.0.0" in (ip_a, ip_b)


def check_host_ports(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    usage = usage or PodUsage.of(pod)
    if not usage.host_ports or not info.host_ports:
        return []
    for wanted in usage.host_ports:
        if any(_ports_conflict(wanted, used) for used in info.host_ports):
            return [REASON_PORTS]
    return []


def check_resources(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    usage = usage or PodUsage.of(pod)
    reasons = []
    allowed_pods = info.allocatable.get(PODS)
    if allowed_pods is not None and info.pod_count + 1 > allowed_pods:
        reasons.append(REASON_TOO_MANY_PODS)
    for name, amount in usage.requests.items():
        if amount <= 0 or name == PODS:
            continue
        if name not in (CPU, MEMORY, EPHEMERAL) and name not in info.allocatable:
            reasons.append(f"Insufficient {name}")
            continue
        free = info.allocatable.get(name, 0) - info.requested.get(name, 0)
        if amount > free:
            reasons.append(f"Insufficient {name}")
    return reasons


Filter = Callable[..., list[str]]

# kube-scheduler's order: cheap, decisive checks first.
FILTERS: tuple[Filter, ...] = (check_unschedulable, check_ready_and_taints, check_node_affinity,
                               check_host_ports, check_resources)


def node_fit_reasons(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    """[] when the pod fits the node, else the first failing filter's reasons."""
    usage = usage or PodUsage.of(pod)
    for check in FILTERS:
        reasons = check(pod, info, usage)
        if reasons:
            return reasons
    return []


def unschedulable_message(total_nodes: int, reasons_by_node: dict[str, list[str]]) -> str:
    """"0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu." (reasons sorted, as kube)."""
    if total_nodes == 0:
        return "no nodes available to schedule pods"
    counts: dict[str, int] = {}
    for reasons in reasons_by_node.values():
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    if not parts:
        return f"0/{total_nodes} nodes are available."
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."
