"""The HorizontalPodAutoscaler's arithmetic, case by case against what kube-controller-manager computes."""

from __future__ import annotations

import pytest

from kfab.controllers.hpa_replicas import MetricError, PodMetric, PodState, Recommendations, replicas_for_resource
from kfab.objects.defaults.autoscaling import SCALE_DOWN, SCALE_UP

NOW = 10_000.0


def pod(name: str, request: int | None = 100, ready: bool = True, phase: str = "Running", started: float = 0.0,
        deleting: bool = False) -> PodState:
    return PodState(name, phase, deleting, started, ready, started, request)


def usage(**millis: int) -> dict[str, PodMetric]:
    return {name: PodMetric(value, NOW, 15.0) for name, value in millis.items()}


def test_utilization_above_target_scales_up_to_the_ceiling_of_the_ratio():
    pods = [pod("a"), pod("b")]
    proposal = replicas_for_resource(2, pods, usage(a=200, b=100), "cpu", NOW, utilization_target=50)
    assert (proposal.replicas, proposal.utilization, proposal.average) == (6, 150, 150)  # ceil(3.0 * 2)


def test_within_the_tolerance_nothing_changes():
    pods = [pod("a"), pod("b")]
    assert replicas_for_resource(2, pods, usage(a=54, b=54), "cpu", NOW, utilization_target=50).replicas == 2
    assert replicas_for_resource(2, pods, usage(a=56, b=56), "cpu", NOW, utilization_target=50).replicas == 3


def test_missing_metrics_count_as_full_request_on_a_scale_down():
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    # a and b use 10% of their request; c and d have no metrics yet: assumed at 100%, so the average is 55%
    proposal = replicas_for_resource(4, pods, usage(a=10, b=10), "cpu", NOW, utilization_target=50)
    assert proposal.replicas == 4  # 55% / 50% is within the tolerance


def test_unready_pods_count_as_idle_on_a_scale_up():
    pods = [pod("a"), pod("b", ready=False, started=NOW - 10)]
    proposal = replicas_for_resource(2, pods, usage(a=100, b=100), "cpu", NOW, utilization_target=50)
    assert proposal.replicas == 2  # (100 + 0) / 200 = 50%: no change, the unready pod's burst is not trusted


def test_average_value_targets_need_no_requests():
    pods = [pod("a", request=None), pod("b", request=None)]
    proposal = replicas_for_resource(2, pods, usage(a=300, b=300), "memory", NOW, average_target=100)
    assert proposal.replicas == 6


def test_a_container_without_a_request_cannot_give_utilization():
    with pytest.raises(MetricError, match="missing request for cpu"):
        replicas_for_resource(1, [pod("a", request=None)], usage(a=100), "cpu", NOW, utilization_target=50)


def test_default_behavior_adds_at_most_four_pods_or_doubles_per_15_seconds():
    memory = Recommendations()
    stable, limited = memory.with_behavior(1, 20, 1, 50, SCALE_UP, SCALE_DOWN, NOW)
    assert stable.replicas == 20 and (limited.replicas, limited.reason) == (5, "ScaleUpLimit")  # max(1+4, 1*2)
    memory.record_scale(1, 5, NOW, 1800)
    _, limited = memory.with_behavior(5, 20, 1, 50, SCALE_UP, SCALE_DOWN, NOW + 5)
    assert limited.replicas == 5  # this period already added 4 from 1
    _, limited = memory.with_behavior(5, 20, 1, 50, SCALE_UP, SCALE_DOWN, NOW + 20)
    assert limited.replicas == 10  # a new period: max(5 + 4, 5 * 2)


def test_scale_down_waits_for_the_stabilization_window():
    memory = Recommendations()
    rules = dict(SCALE_DOWN, stabilizationWindowSeconds=60)
    stable, _ = memory.with_behavior(4, 1, 1, 10, SCALE_UP, rules, NOW)
    assert (stable.replicas, stable.reason) == (4, "ScaleDownStabilized")  # the recorded 4 holds it
    stable, limited = memory.with_behavior(4, 1, 1, 10, SCALE_UP, rules, NOW + 61)
    assert stable.replicas == 1 and limited.replicas == 1


def test_without_behavior_the_legacy_rules_apply():
    memory = Recommendations()
    _, limited = memory.legacy(2, 30, 1, 10, NOW)
    assert (limited.replicas, limited.reason) == (4, "ScaleUpLimit")  # max(2 * 2, 4)
    stable, _ = memory.legacy(4, 1, 1, 10, NOW + 10)
    assert (stable.replicas, stable.reason) == (30, "ScaleDownStabilized")  # the 5 min window remembers 30
