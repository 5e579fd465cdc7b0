"""Pure logic of quotas, limit ranges and preemption: what kube's evaluators count, the LimitRanger's
defaults and messages, and which pods the scheduler would evict."""

from __future__ import annotations

from kfab.objects import limitrange, quota
from kfab.objects.registry import REGISTRY
from kfab.scheduler import preemption
from kfab.scheduler.nodeinfo import NodeInfo, PodUsage

POD = REGISTRY.by_kind("v1", "Pod")
JOB = REGISTRY.by_kind("batch/v1", "Job")


def pod(name="p", requests=None, limits=None, priority=0, phase="Pending", start="2026-01-01T00:00:00Z", **spec):
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": start},
            "spec": {"priority": priority, "containers": [{"name": "c", "resources": resources}], **spec},
            "status": {"phase": phase}}


def test_pod_usage_counts_requests_limits_and_nothing_once_finished():
    used = quota.usage(POD, pod(requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "1"}))
    assert quota.as_strings(used) == {"count/pods": "1", "cpu": "250m", "limits.cpu": "1", "memory": "64Mi",
                                      "pods": "1", "requests.cpu": "250m", "requests.memory": "64Mi"}
    assert quota.usage(POD, pod(phase="Succeeded")) == {}
    assert quota.as_strings(quota.usage(JOB, {"metadata": {}})) == {"count/jobs.batch": "1"}


def test_sums_keep_the_first_non_zero_format():
    total = {"m": quota.parse_list({"m": "0"})["m"]}
    quota.add(total, "m", quota.parse_list({"x": "128Mi"})["x"])
    quota.add(total, "m", quota.parse_list({"x": "128Mi"})["x"])
    assert quota.as_strings(total) == {"m": "256Mi"}


def test_an_update_counts_only_what_grows():
    before = quota.usage(POD, pod(requests={"cpu": "1"}))
    after = quota.usage(POD, pod(requests={"cpu": "1500m", "memory": "1Gi"}))
    assert quota.as_strings(quota.increase(after, before)) == {"cpu": "500m", "memory": "1Gi",
                                                               "requests.cpu": "500m", "requests.memory": "1Gi"}
    assert quota.increase(before, after) == {}


def test_compute_quota_names_the_containers_missing_what_it_limits():
    missing = quota.missing_compute({"limits.cpu": "2", "requests.memory": "1Gi", "pods": "3"},
                                    pod(requests={"cpu": "1"}))
    assert missing == "limits.cpu for: c; requests.memory for: c"


def test_scopes_select_pods_only():
    best_effort = {"spec": {"scopes": ["BestEffort"]}}
    assert quota.selects(best_effort, POD, pod())
    assert not quota.selects(best_effort, POD, pod(requests={"cpu": "1"}))
    assert not quota.selects(best_effort, JOB, {"metadata": {}})
    by_class = {"spec": {"scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}
    assert quota.selects(by_class, POD, pod(priorityClassName="high"))
    assert not quota.selects(by_class, POD, pod(priorityClassName="low"))


def test_limit_range_items_default_like_kube():
    lr = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "10Mi"}}]}}
    limitrange.default_limit_range(lr)
    assert lr["spec"]["limits"][0]["default"] == {"cpu": "2"}
    assert lr["spec"]["limits"][0]["defaultRequest"] == {"cpu": "2", "memory": "10Mi"}


def test_limit_ranger_messages():
    lr = {"spec": {"limits": [{"type": "Container", "min": {"cpu": "100m"}, "max": {"memory": "1Gi"},
                               "maxLimitRequestRatio": {"cpu": "2"}},
                              {"type": "Pod", "max": {"cpu": "1"}}]}}
    p = pod(requests={"cpu": "50m"}, limits={"cpu": "300m", "memory": "2Gi"})
    assert limitrange.pod_violations(p, [lr]) == [
        "minimum cpu usage per Container is 100m, but request is 50m",
        "maximum memory usage per Container is 1Gi, but limit is 2Gi",
        "cpu max limit to request ratio per Container is 2, but provided ratio is 6.000000",
    ]
    two = pod(limits={"cpu": "600m"})
    two["spec"]["containers"].append({"name": "d", "resources": {"limits": {"cpu": "600m"}}})
    assert limitrange.pod_violations(two, [{"spec": {"limits": [{"type": "Pod", "max": {"cpu": "1"}}]}}]) == [
        "maximum cpu usage per Pod is 1, but limit is 1200m"]


def test_limit_ranger_defaults_and_annotation():
    p = pod()
    note = limitrange.default_pod(p, [{"spec": {"limits": [{"type": "Container", "default": {"cpu": "1"},
                                                            "defaultRequest": {"cpu": "100m"}}]}}])
    assert p["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "100m"}}
    assert note == "LimitRanger plugin set: cpu request for container c; cpu limit for container c"


def _node(name: str, cpu: str, pods: list[dict]) -> NodeInfo:
    info = NodeInfo({"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "pods": "110"},
                                                            "conditions": [{"type": "Ready", "status": "True"}]}})
    for p in pods:
        info.add(PodUsage.of(p))
    return info


def test_victims_are_the_fewest_least_important_pods():
    small_old = pod("small-old", requests={"cpu": "1"}, priority=1, start="2026-01-01T00:00:00Z")
    small_new = pod("small-new", requests={"cpu": "1"}, priority=1, start="2026-01-02T00:00:00Z")
    big = pod("big", requests={"cpu": "2"}, priority=5)
    high = pod("high", requests={"cpu": "1"}, priority=10)
    info = _node("n", "4", [small_old, small_new, big])
    victims, violations = preemption.select_victims(high, PodUsage.of(high), info, [small_old, small_new, big],
                                                    preemption.Budgets())
    # Most important pods are kept first (big, then the older small one): the newer small pod goes.
    assert [v["metadata"]["name"] for v in victims] == ["small-new"] and violations == 0
    assert preemption.select_victims(high, PodUsage.of(high), info, [], preemption.Budgets()) == \
        [preemption.NO_VICTIMS]


def test_budget_protected_pods_are_kept_when_others_can_go():
    a = pod("a", requests={"cpu": "1"}, priority=1)
    a["metadata"]["labels"] = {"app": "db"}
    b = pod("b", requests={"cpu": "1"}, priority=1, start="2025-01-01T00:00:00Z")
    budgets = preemption.Budgets([{"metadata": {"namespace": "ns"}, "spec": {"selector": {"matchLabels": {
        "app": "db"}}}, "status": {"disruptionsAllowed": 0}}])
    high = pod("high", requests={"cpu": "1"}, priority=10)
    victims, violations = preemption.select_victims(high, PodUsage.of(high), _node("n", "2", [a, b]), [a, b],
                                                    budgets)
    assert [v["metadata"]["name"] for v in victims] == ["b"] and violations == 0


def test_candidate_node_with_lower_priority_victims_wins():
    low, mid = pod("low", priority=1), pod("mid", priority=5)
    pick = preemption.pick([preemption.Candidate("n1", [mid], order=0), preemption.Candidate("n2", [low], order=1)])
    assert pick.node == "n2"
    pick = preemption.pick([preemption.Candidate("n1", [low, low], order=0),
                            preemption.Candidate("n2", [low], order=1)])
    assert pick.node == "n2"
