"""The HorizontalPodAutoscaler's arithmetic, as kube-controller-manager's podautoscaler package does it:

- replicas_for_resource(): the replica count one Resource metric proposes (replica_calculator.go): pods
  grouped into ready / unready / missing metrics / ignored, utilization against the pods' requests (or the
  average value against a target), the 0.1 tolerance, and the conservative fill-in for missing and unready
  pods that keeps a scale decision from flipping direction;
- Recommendations: stabilization windows and the scale rate limits of spec.behavior (horizontal.go), or the
  legacy rules without a behavior (5 minute scale-down window, at most max(2x, 4) on the way up).

Pure functions over plain values (millis, seconds since the epoch); the controller (kfab.controllers.hpa)
reads the objects and writes the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
LEGACY_DOWNSCALE_WINDOW = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0


class MetricError(Exception):
    """The metric cannot give a replica count (no pods, no metrics, missing requests)."""


@dataclass(frozen=True)
class PodState:
    name: str
    phase: str
    deleting: bool
    start_time: float | None
    ready: bool | None  # the Ready condition's status; None when the pod has no Ready condition
    ready_since: float | None  # the Ready condition's lastTransitionTime
    request: int | None  # the pod's request of the resource, in millis; None when a container has none


@dataclass(frozen=True)
class PodMetric:
    value: int  # millis
    timestamp: float
    window: float


@dataclass
class Proposal:
    replicas: int
    utilization: int | None  # percent of request, for Utilization targets
    average: int  # millis per pod


def group_pods(pods: list[PodState], metrics: dict[str, PodMetric], resource: str, now: float):
    """(ready count, unready names, missing names, ignored names) as groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            elif pod.start_time + CPU_INITIALIZATION_PERIOD > now:
                # a starting pod's samples count once a whole window was taken after its last readiness change
                is_unready = not pod.ready or metric.timestamp < (pod.ready_since or 0) + metric.window
            else:
                # an old pod that never became ready is left out
                is_unready = not pod.ready and pod.start_time + INITIAL_READINESS_DELAY > (pod.ready_since or 0)
            if is_unready:
                unready.add(pod.name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    total, requested, count = 0, 0, 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        total += value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = total * 100 // requested
    return utilization / target, utilization, total // count


def _average_ratio(metrics: dict[str, int], target: int) -> tuple[float, int]:
    average = sum(metrics.values()) // len(metrics)
    return average / target, average


def replicas_for_resource(current: int, pods: list[PodState], metrics: dict[str, PodMetric], resource: str,
                          now: float, utilization_target: int | None = None, average_target: int | None = None,
                          tolerance: float = TOLERANCE) -> Proposal:
    """The replica count for one Resource metric: a Utilization target (percent) or an AverageValue (millis)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready_count, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    values = {name: m.value for name, m in metrics.items() if name not in ignored and name not in unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests: dict[str, int] = {}
    if utilization_target is not None:
        for pod in pods:
            if pod.request is None:
                raise MetricError(f"missing request for {resource} in a container of pod {pod.name}")
            requests[pod.name] = pod.request

    def ratio(of: dict[str, int]) -> tuple[float, int | None, int]:
        if utilization_target is not None:
            return _utilization_ratio(of, requests, utilization_target)
        r, average = _average_ratio(of, average_target)
        return r, None, average

    usage_ratio, utilization, average = ratio(values)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - usage_ratio) <= tolerance:
            return Proposal(current, utilization, average)
        return Proposal(math.ceil(usage_ratio * ready_count), utilization, average)
    if missing:
        if usage_ratio < 1.0:  # scaling down: missing pods count as using their request (or the target)
            for name in missing:
                values[name] = (requests[name] * max(100, utilization_target) // 100
                                if utilization_target is not None else average_target)
        elif usage_ratio > 1.0:  # scaling up: as using nothing
            for name in missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio, _, _ = ratio(values)
    if abs(1.0 - new_ratio) <= tolerance or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return Proposal(current, utilization, average)
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Proposal(current, utilization, average)
    return Proposal(replicas, utilization, average)


# --- stabilization and rate limits ---------------------------------------------------------------------

@dataclass
class ScaleEvent:
    change: int
    timestamp: float


@dataclass
class Limited:
    replicas: int
    reason: str
    message: str


@dataclass
class Recommendations:
    """What one HPA remembers between syncs: its recent recommendations and scale events."""

    recommendations: list[tuple[int, float]] = field(default_factory=list)  # (replicas, when)
    ups: list[ScaleEvent] = field(default_factory=list)
    downs: list[ScaleEvent] = field(default_factory=list)

    def record_scale(self, before: int, after: int, now: float, keep_for: float) -> None:
        events = self.ups if after > before else self.downs
        events.append(ScaleEvent(abs(after - before), now))
        for name in ("ups", "downs"):
            setattr(self, name, [e for e in getattr(self, name) if e.timestamp > now - keep_for])

    # -- with spec.behavior --------------------------------------------------------------------------

    def stabilize(self, current: int, desired: int, up_window: float, down_window: float, now: float) -> Limited:
        up, down = desired, desired
        old = None
        for i, (replicas, when) in enumerate(self.recommendations):
            if when > now - up_window:
                up = min(up, replicas)
            if when > now - down_window:
                down = max(down, replicas)
            if when < now - up_window and when < now - down_window:
                old = i
        recommendation = min(max(current, up), down)
        if old is not None:
            self.recommendations[old] = (desired, now)
        else:
            self.recommendations.append((desired, now))
        if desired >= current:
            return Limited(recommendation, "ScaleUpStabilized", "recent recommendations were lower than current one, "
                                                                "applying the lowest recent recommendation")
        return Limited(recommendation, "ScaleDownStabilized", "recent recommendations were higher than current one, "
                                                              "applying the highest recent recommendation")

    def _changed_in(self, events: list[ScaleEvent], period: float, now: float) -> int:
        return sum(e.change for e in events if e.timestamp > now - period)

    def rate_limit(self, current: int, rules: dict, now: float, up: bool) -> int:
        """The count the behavior's policies allow from the count at the start of each policy's period
        (calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors)."""
        if rules.get("selectPolicy") == "Disabled":
            return current
        # Max picks the policy allowing the most change: the highest count up, the lowest count down.
        most_change = rules.get("selectPolicy") != "Min"
        pick = max if most_change == up else min
        result = None
        for policy in rules.get("policies") or []:
            period = float(policy["periodSeconds"])
            start = current - self._changed_in(self.ups, period, now) + self._changed_in(self.downs, period, now)
            if policy["type"] == "Pods":
                proposed = start + policy["value"] if up else start - policy["value"]
            elif up:
                proposed = math.ceil(start * (1 + policy["value"] / 100))
            else:
                proposed = int(start * (1 - policy["value"] / 100))
            result = proposed if result is None else pick(result, proposed)
        return current if result is None else result

    def with_behavior(self, current: int, desired: int, min_replicas: int, max_replicas: int, scale_up: dict,
                      scale_down: dict, now: float) -> tuple[Limited, Limited]:
        """(stabilized recommendation, the count to scale to with its ScalingLimited reason)."""
        if not self.recommendations:
            self.recommendations.append((current, now))  # a scale-down waits a whole window after a restart
        stable = self.stabilize(current, desired, float(scale_up.get("stabilizationWindowSeconds") or 0),
                                float(scale_down.get("stabilizationWindowSeconds") or 0), now)
        wanted = stable.replicas
        if wanted > current:
            limit = max(self.rate_limit(current, scale_up, now, up=True), current)
            if max_replicas > limit:
                allowed, reason, message = limit, "ScaleUpLimit", ("the desired replica count is increasing faster "
                                                                   "than the maximum scale rate")
            else:
                allowed, reason, message = max_replicas, "TooManyReplicas", ("the desired replica count is more "
                                                                             "than the maximum replica count")
            if wanted > allowed:
                return stable, Limited(allowed, reason, message)
        elif wanted < current:
            limit = min(self.rate_limit(current, scale_down, now, up=False), current)
            if min_replicas < limit:
                allowed, reason, message = limit, "ScaleDownLimit", ("the desired replica count is decreasing "
                                                                     "faster than the maximum scale rate")
            else:
                allowed, reason, message = min_replicas, "TooFewReplicas", ("the desired replica count is less "
                                                                            "than the minimum replica count")
            if wanted < allowed:
                return stable, Limited(allowed, reason, message)
        return stable, Limited(wanted, "DesiredWithinRange", "the desired count is within the acceptable range")

    # -- without spec.behavior (the rules before behaviors existed) -------------------------------------

    def legacy(self, current: int, desired: int, min_replicas: int, max_replicas: int,
               now: float) -> tuple[Limited, Limited]:
        highest, old = desired, None
        for i, (replicas, when) in enumerate(self.recommendations):
            if when < now - LEGACY_DOWNSCALE_WINDOW:
                old = i
            elif replicas > highest:
                highest = replicas
        if old is not None:
            self.recommendations[old] = (desired, now)
        else:
            self.recommendations.append((desired, now))
        if highest != desired:
            stable = Limited(highest, "ScaleDownStabilized", "recent recommendations were higher than current one, "
                                                             "applying the highest recent recommendation")
        else:
            stable = Limited(highest, "ReadyForNewScale", "recommended size matches current size")
        scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if max_replicas > scale_up_limit:
            maximum, reason, message = scale_up_limit, "ScaleUpLimit", ("the desired replica count is increasing "
                                                                        "faster than the maximum scale rate")
        else:
            maximum, reason, message = max_replicas, "TooManyReplicas", ("the desired replica count is more than "
                                                                         "the maximum replica count")
        if highest < min_replicas:
            return stable, Limited(min_replicas, "TooFewReplicas", "the desired replica count is less than the "
                                                                   "minimum replica count")
        if highest > maximum:
            return stable, Limited(maximum, reason, message)
        return stable, Limited(highest, "DesiredWithinRange", "the desired count is within the acceptable range")
