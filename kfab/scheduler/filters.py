"""Filters: can this pod run on this node? Pure functions of (pod, NodeInfo) -> reasons it cannot ([] = fits).

The reasons are kube-scheduler's own words, because users grep for them and the scheduler aggregates them
into "0/3 nodes are available: 3 Insufficient cpu." As kube-scheduler's framework, a node is reported with
the reasons of the first filter that rejects it.
"""

from __future__ import annotations

from typing import Callable

from kfab.objects.node_affinity import matches_node_selector_and_affinity
from kfab.objects.taints import UNSCHEDULABLE_TAINT, condition_taints, tolerated
from kfab.scheduler.nodeinfo import CPU, EPHEMERAL, MEMORY, PODS, NodeInfo, PodUsage
from kfab.objects.meta import spec_of

REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
REASON_TOO_MANY_PODS = "Too many pods"


def blocking_taints(info: NodeInfo) -> list[dict]:
    """The node's NoSchedule/NoExecute taints, those its Ready condition implies included (computed once per
    Node version: this runs for every pod against every node)."""
    taints = info.derived.get("blocking_taints")
    if taints is None:
        taints = [t for t in list(spec_of(info.node).get("taints") or []) + condition_taints(info.node)
                  if t.get("effect") in ("NoSchedule", "NoExecute")]  # PreferNoSchedule only lowers a score
        info.derived["blocking_taints"] = taints
    return taints


def check_ready_and_taints(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    taints = blocking_taints(info)
    if not taints:
        return []
    tolerations = spec_of(pod).get("tolerations") or []
    for taint in taints:
        if not tolerated(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"]
    return []


def check_unschedulable(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    if not spec_of(info.node).get("unschedulable"):
        return []
    taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if tolerated(spec_of(pod).get("tolerations") or [], taint):
        return []
    return [REASON_UNSCHEDULABLE]


# --- node selector and required node affinity ---------------------------------------------------------

def check_node_affinity(pod: dict, info: NodeInfo, usage: PodUsage | None = None) -> list[str]:
    spec = spec_of(pod)
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
