"""Scores: which of the nodes that fit is best? Pure functions, each 0..100 per node, higher is better.

- least allocated (NodeResourcesFit LeastAllocated): the share of CPU and memory left free once the pod is
  there, so load spreads across nodes;
- spread (kube's SelectorSpread / default PodTopologySpread): fewer pods of the same controller on the node
  is better, so a ReplicaSet's replicas do not share a fate;
- PreferNoSchedule taints the pod does not tolerate count against a node (TaintToleration score).
"""

from __future__ import annotations

import random

from kfab.objects.taints import tolerated
from kfab.scheduler.nodeinfo import CPU, MEMORY, NodeInfo, PodUsage
from kfab.objects.meta import spec_of

MAX_SCORE = 100
WEIGHTS = {"least_allocated": 1, "spread": 2, "taint": 1}   # spread weighs 2 as PodTopologySpread does


def least_allocated(usage: PodUsage, info: NodeInfo) -> float:
    scores = []
    for resource, requested, wanted in ((CPU, info.nonzero_cpu, usage.nonzero_cpu),
                                        (MEMORY, info.nonzero_memory, usage.nonzero_memory)):
        capacity = info.allocatable.get(resource, 0)
        if capacity <= 0:
            scores.append(0.0)
            continue
        scores.append(max(0.0, (capacity - requested - wanted) * MAX_SCORE / capacity))
    return sum(scores) / len(scores)


def spread(usage: PodUsage, infos: list[NodeInfo]) -> list[float]:
    """Per node (same order as infos): 100 where no pod of the same owner runs, falling to 0 on the most crowded."""
    if not usage.owner_uid:
        return [float(MAX_SCORE)] * len(infos)
    counts = [info.owners.get(usage.owner_uid, 0) for info in infos]
    most = max(counts, default=0)
    if most == 0:
        return [float(MAX_SCORE)] * len(infos)
    return [MAX_SCORE * (most - c) / most for c in counts]


def taint_penalty(pod: dict, infos: list[NodeInfo]) -> list[float]:
    tolerations = [t for t in spec_of(pod).get("tolerations") or []
                   if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
    counts = [sum(1 for taint in _preferred_taints(info) if not tolerated(tolerations, taint)) for info in infos]
    most = max(counts, default=0)
    if most == 0:
        return [float(MAX_SCORE)] * len(infos)
    return [MAX_SCORE * (most - c) / most for c in counts]


def _preferred_taints(info: NodeInfo) -> list[dict]:
    taints = info.derived.get("prefer_no_schedule")
    if taints is None:
        taints = [t for t in spec_of(info.node).get("taints") or [] if t.get("effect") == "PreferNoSchedule"]
        info.derived["prefer_no_schedule"] = taints
    return taints


def score_nodes(pod: dict, usage: PodUsage, infos: list[NodeInfo]) -> list[float]:
    spreads = spread(usage, infos)
    taints = taint_penalty(pod, infos)
    return [WEIGHTS["least_allocated"] * least_allocated(usage, info) + WEIGHTS["spread"] * s
            + WEIGHTS["taint"] * t for info, s, t in zip(infos, spreads, taints)]


def select_node(pod: dict, usage: PodUsage, feasible: list[NodeInfo], rng: random.Random | None = None) -> NodeInfo:
    """The best-scoring node; ties broken at random, as kube-scheduler's selectHost."""
    scores = score_nodes(pod, usage, feasible)
    best = max(scores)
    top = [info for info, s in zip(feasible, scores) if s >= best - 1e-9]
    return top[0] if len(top) == 1 else (rng or random).choice(top)
