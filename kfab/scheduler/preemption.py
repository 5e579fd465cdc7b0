"""Preemption (kube-scheduler's DefaultPreemption): when a pod fits no node, find the node where evicting
lower-priority pods makes it fit, with the fewest and least important victims. Pure functions of the
scheduler's cache; the scheduler deletes the victims and nominates the node.

Per node (SelectVictimsOnNode): take every lower-priority pod off a copy of the node; if the pod still does
not fit, the node is no candidate. Otherwise put them back one by one, most important first (higher
priority, then older), keeping each one the pod still fits beside; the rest are the victims. Pods whose
eviction would break a PodDisruptionBudget are put back first. Among candidates (pickOneNodeForPreemption):
fewest budget violations, then the lowest highest-victim priority, the lowest sum of victim priorities,
the fewest victims, the latest start among the highest-priority victims, then the first node.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kfab.objects.selectors import selector_from_object
from kfab.scheduler.filters import REASON_PORTS, REASON_TOO_MANY_PODS, node_fit_reasons
from kfab.scheduler.nodeinfo import NodeInfo, PodUsage
from kfab.objects.meta import meta_of, spec_of, status_of

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
_INT32 = 2 ** 31


def priority_of(pod: dict) -> int:
    value = spec_of(pod).get("priority")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def start_of(pod: dict) -> str:
    return status_of(pod).get("startTime") or meta_of(pod).get("creationTimestamp") or ""


def resolvable(reasons: list[str]) -> bool:
    """Can taking pods off the node cure these filter failures? (Resources, pod count and host ports can;
    taints, affinity, cordons and volumes cannot: kube's UnschedulableAndUnresolvable.)"""
    return bool(reasons) and all(r.startswith("Insufficient ") or r in (REASON_TOO_MANY_PODS, REASON_PORTS)
                                 for r in reasons)


def clone(info: NodeInfo) -> NodeInfo:
    trial = copy.copy(info)
    trial.requested, trial.host_ports, trial.owners = dict(info.requested), dict(info.host_ports), dict(info.owners)
    return trial


@dataclass
class Candidate:
    node: str
    victims: list[dict]
    violations: int = 0
    order: int = 0

    def sort_key(self) -> tuple:
        priorities = [priority_of(v) for v in self.victims]
        highest = max(priorities, default=-_INT32)
        latest = min((start_of(v) for v in self.victims if priority_of(v) == highest), default="")
        # Latest start among the highest-priority victims wins: sort descending by negating the order.
        return (self.violations, highest, sum(p + _INT32 for p in priorities), len(self.victims),
                _descending(latest), self.order)


def _descending(text: str) -> tuple:
    return tuple(-ord(c) for c in text)


@dataclass
class Budgets:
    """PodDisruptionBudgets as preemption counts them: how many more pods each may lose."""
    budgets: list[dict] = field(default_factory=list)

    def matching(self, pod: dict) -> list[int]:
        meta = meta_of(pod)
        out = []
        for i, pdb in enumerate(self.budgets):
            if meta_of(pdb).get("namespace") != meta.get("namespace"):
                continue
            selector = spec_of(pdb).get("selector")
            if selector is None:
                continue
            try:
                sel = selector_from_object(selector)
            except ValueError:
                continue
            if not sel.empty() and sel.matches(meta.get("labels") or {}):
                out.append(i)
        return out

    def split(self, pods: list[dict]) -> tuple[list[dict], list[dict]]:
        """(pods whose eviction would break a budget, the others), in the given order."""
        allowed = [int(status_of(pdb).get("disruptionsAllowed") or 0) for pdb in self.budgets]
        violating, fine = [], []
        for pod in pods:
            broken = False
            for i in self.matching(pod):
                allowed[i] -= 1
                broken = broken or allowed[i] < 0
            (violating if broken else fine).append(pod)
        return violating, fine


def select_victims(pod: dict, usage: PodUsage, info: NodeInfo, placed: list[dict],
                   budgets: Budgets) -> tuple[list[dict], int] | list[str]:
    """(victims, budget violations) that make room for pod on this node; else why not, as kube reports it
    (no lower-priority pods at all, or the filters' reasons with all of them gone)."""
    mine = priority_of(pod)
    lower = [p for p in placed if priority_of(p) < mine]
    if not lower:
        return [NO_VICTIMS]
    trial = clone(info)
    for p in lower:
        trial.remove(PodUsage.of(p))
    reasons = node_fit_reasons(pod, trial, usage)
    if reasons:
        return reasons
    lower.sort(key=lambda p: (-priority_of(p), start_of(p)))
    violating, fine = budgets.split(lower)
    victims, violations = [], 0
    for group, breaks_budget in ((violating, True), (fine, False)):
        for p in group:
            p_usage = PodUsage.of(p)
            trial.add(p_usage)
            if node_fit_reasons(pod, trial, usage):
                trial.remove(p_usage)
                victims.append(p)
                violations += int(breaks_budget)
    return victims, violations


def pick(candidates: list[Candidate]) -> Candidate | None:
    return min(candidates, key=Candidate.sort_key, default=None)


def postfilter_message(total: int, counts: dict[str, int]) -> str:
    """"preemption: 0/3 nodes are available: 1 Insufficient cpu, 2 Preemption is not helpful for scheduling."
    (reasons by node, counted and sorted as the FitError of kube's preemption evaluator)."""
    parts = sorted(f"{n} {reason}" for reason, n in counts.items() if n)
    return f"preemption: 0/{total} nodes are available: {', '.join(parts)}."
