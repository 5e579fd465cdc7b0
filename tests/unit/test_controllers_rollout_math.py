"""Deployment arithmetic: maxSurge/maxUnavailable rounding, fenceposts, new ReplicaSet size, proportional
scaling, template hashes, and the order in which a ReplicaSet deletes pods."""

from __future__ import annotations

import pytest

from kfab.controllers import deployment_util as du
from kfab.controllers.podutil import deletion_order


def dep(replicas=10, surge="25%", unavailable="25%", kind="RollingUpdate") -> dict:
    strategy = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"generation": 1}, "spec": {"replicas": replicas, "strategy": strategy}}


def rs(replicas: int, max_replicas: int | None = None) -> dict:
    annotations = {du.MAX_REPLICAS: str(max_replicas)} if max_replicas is not None else {}
    return {"metadata": {"annotations": annotations}, "spec": {"replicas": replicas}}


@pytest.mark.parametrize("value,total,up,expected", [
    (3, 10, True, 3), ("3", 10, False, 3),
    ("25%", 10, True, 3), ("25%", 10, False, 2),   # surge rounds up, unavailable rounds down
    ("50%", 5, True, 3), ("50%", 5, False, 2), ("0%", 7, True, 0), ("100%", 7, False, 7),
])
def test_int_or_percent_scaling_rounds_like_kubernetes(value, total, up, expected):
    assert du.resolve_int_or_percent(value, total, up) == expected


def test_rolling_params_never_both_zero():
    assert du.rolling_params(dep(10, 0, 0)) == (0, 1)
    assert du.rolling_params(dep(1, "25%", "25%")) == (1, 0)  # 0.25 up = 1, down = 0
    assert du.rolling_params(dep(3, "10%", "10%")) == (1, 0)


def test_max_unavailable_is_capped_and_zero_for_recreate():
    assert du.max_unavailable(dep(2, 1, 5)) == 2
    assert du.max_unavailable(dep(5, kind="Recreate")) == 0
    assert du.max_surge(dep(5, kind="Recreate")) == 0


def test_new_replicaset_grows_within_surge():
    d = dep(10, surge=2, unavailable=0)
    old, new = rs(10), rs(0)
    assert du.new_rs_replicas(d, [old, new], new) == 2        # 12 pods at most
    assert du.new_rs_replicas(d, [rs(9), rs(2)], rs(2)) == 3  # 11 -> room for one more
    assert du.new_rs_replicas(d, [rs(10), rs(2)], rs(2)) == 2  # at the limit
    assert du.new_rs_replicas(d, [rs(0), rs(9)], rs(9)) == 10  # never past replicas
    assert du.new_rs_replicas(dep(4, kind="Recreate"), [], rs(0)) == 4


def test_proportional_scaling_shares_added_replicas_by_size():
    # mid-rollout 10 -> 20 replicas, surge 0: old 6 + new 4 were sized for max 10
    d = dep(20, surge=0, unavailable=1)
    old, new = rs(6, max_replicas=10), rs(4, max_replicas=10)
    to_add = 20 - 10
    first = du.proportion(old, d, to_add, 0, 10)
    second = du.proportion(new, d, to_add, first, 10)
    assert (first, second) == (6, 4)
    assert du.proportion(rs(0), d, to_add, 0, 10) == 0


def test_template_hash_is_stable_and_changes_with_template_and_collisions():
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    h = du.template_hash(t)
    assert h == du.template_hash({"spec": t["spec"], "metadata": t["metadata"]})  # key order does not matter
    assert h != du.template_hash(t, 1) != du.template_hash(t, 2)
    assert h != du.template_hash({**t, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}})
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 6 <= len(h) <= 10


def test_equal_ignore_hash():
    a = {"metadata": {"labels": {"app": "web", du.HASH_LABEL: "abc"}}, "spec": {"x": 1}}
    b = {"metadata": {"labels": {"app": "web"}}, "spec": {"x": 1}}
    assert du.equal_ignore_hash(a, b) and a["metadata"]["labels"][du.HASH_LABEL] == "abc"
    assert not du.equal_ignore_hash(a, {**b, "spec": {"x": 2}})


def test_completeness_and_progress():
    d = dep(3)
    assert du.is_complete(d, {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3, "observedGeneration": 1})
    assert not du.is_complete(d, {"updatedReplicas": 3, "replicas": 4, "availableReplicas": 3,
                                  "observedGeneration": 1})
    assert du.is_progressing({"updatedReplicas": 1}, {"updatedReplicas": 2})
    assert du.is_progressing({"replicas": 5}, {"replicas": 4})
    assert not du.is_progressing({"availableReplicas": 2}, {"availableReplicas": 2})


def test_set_condition_keeps_transition_time_while_status_holds():
    status: dict = {}
    du.set_condition(status, "Progressing", "True", "ReplicaSetUpdated", "m1", "t1")
    du.set_condition(status, "Progressing", "True", "NewReplicaSetAvailable", "m2", "t2")
    cond = du.condition(status, "Progressing")
    assert (cond["lastTransitionTime"], cond["lastUpdateTime"], cond["reason"]) == ("t1", "t2",
                                                                                   "NewReplicaSetAvailable")
    du.set_condition(status, "Progressing", "False", "ProgressDeadlineExceeded", "m3", "t3")
    assert du.condition(status, "Progressing")["lastTransitionTime"] == "t3" and len(status["conditions"]) == 1


def pod(name, node=None, phase="Pending", ready=None, created="2026-01-01T00:00:00Z", restarts=0) -> dict:
    conditions = [] if ready is None else [{"type": "Ready", "status": "True", "lastTransitionTime": ready}]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_replicaset_deletes_unscheduled_then_pending_then_not_ready_then_newest_first():
    pods = [
        pod("ready-old", "n", "Running", ready="2026-01-01T00:00:05Z"),
        pod("ready-new", "n", "Running", ready="2026-01-01T00:01:00Z"),
        pod("running-not-ready", "n", "Running"),
        pod("pending-on-node", "n", "Pending"),
        pod("unscheduled"),
        pod("ready-old-restarting", "n", "Running", ready="2026-01-01T00:00:05Z", restarts=3),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_order)]
    assert order == ["unscheduled", "pending-on-node", "running-not-ready", "ready-new", "ready-old-restarting",
                     "ready-old"]
