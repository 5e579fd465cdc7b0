"""Pure parts of the DaemonSet and disruption controllers and the eviction subresource: which nodes run a
daemon pod, rolling-update budgets, what a budget allows, and the eviction's refusals in kube's words."""

from __future__ import annotations

import datetime

import pytest

from kfab.api.eviction import take_disruption
from kfab.controllers.daemonset_util import (new_pod, node_should_run, surge_and_unavailable, target_node,
                                             with_daemon_tolerations)
from kfab.controllers.disruption import count_healthy, disrupted_pods, selected_pods
from kfab.objects.defaults import apply_defaults
from kfab.objects.disruption import guards
from kfab.objects.errors import APIError
from kfab.objects.validation import validate_create
from kfab.objects.registry import REGISTRY


def ds(node_selector=None, tolerations=None, rolling=None, host_network=False):
    spec = {"containers": [{"name": "c", "image": "i"}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if host_network:
        spec["hostNetwork"] = True
    obj = {"apiVersion": "apps/v1", "kind": "DaemonSet",
           "metadata": {"name": "agent", "namespace": "ns", "uid": "u",
                        "annotations": {"deprecated.daemonset.template.generation": "4"}},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}}}
    if rolling is not None:
        obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    return obj


def node(name="n1", labels=None, taints=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def test_node_selector_and_taints_decide_where_daemon_pods_run():
    assert node_should_run(ds(), node()) == (True, True)
    assert node_should_run(ds({"disk": "ssd"}), node()) == (False, False)
    assert node_should_run(ds({"disk": "ssd"}), node(labels={"disk": "ssd"})) == (True, True)
    # NoSchedule: no new pod, the running one stays; NoExecute: it goes too; a toleration lets it in.
    assert node_should_run(ds(), node(taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])) == (False, True)
    assert node_should_run(ds(), node(taints=[{"key": "k", "value": "v", "effect": "NoExecute"}])) == (False, False)
    tolerant = ds(tolerations=[{"key": "k", "operator": "Exists"}])
    assert node_should_run(tolerant, node(taints=[{"key": "k", "effect": "NoExecute"}])) == (True, True)


def test_default_daemonset_tolerations_cover_cordoned_and_unready_nodes():
    for taint in ({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                  {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                  {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}):
        assert node_should_run(ds(), node(taints=[taint])) == (True, True), taint
    net = {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}
    assert node_should_run(ds(), node(taints=[net])) == (False, True)
    assert node_should_run(ds(host_network=True), node(taints=[net])) == (True, True)
    # A user's own not-ready toleration with tolerationSeconds is replaced by the unbounded one.
    spec = with_daemon_tolerations({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                     "effect": "NoExecute", "tolerationSeconds": 30}]})
    assert [t for t in spec["tolerations"] if t["key"] == "node.kubernetes.io/not-ready"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]


def test_daemon_pod_is_pinned_by_node_affinity_and_labelled():
    pod = new_pod(ds(), ds()["spec"]["template"], "n7", "abc123")
    assert target_node(pod) == "n7" and "nodeName" not in pod["spec"]
    assert pod["metadata"]["labels"] == {"a": "b", "controller-revision-hash": "abc123",
                                         "pod-template-generation": "4"}
    assert pod["metadata"]["generateName"] == "agent-"


@pytest.mark.parametrize("rolling,desired,expected", [
    ({"maxUnavailable": 1, "maxSurge": 0}, 5, (0, 1)),
    ({"maxUnavailable": "30%", "maxSurge": 0}, 5, (0, 2)),     # percentages round up
    ({"maxUnavailable": 0, "maxSurge": "10%"}, 5, (1, 0)),
    ({"maxUnavailable": "10%", "maxSurge": 0}, 0, (0, 1)),     # never both 0
])
def test_rolling_update_budgets(rolling, desired, expected):
    assert surge_and_unavailable(ds(rolling=rolling), desired) == expected


def test_daemonset_validation_messages():
    rt = REGISTRY.by_kind("apps/v1", "DaemonSet")
    both = apply_defaults(rt, ds(rolling={"maxUnavailable": 1, "maxSurge": 1}))
    assert [c.message for c in validate_create(rt, both)] == [
        "Invalid value: 1: may not be set when maxUnavailable is non-zero"]
    none = apply_defaults(rt, ds(rolling={"maxUnavailable": 0, "maxSurge": 0}))
    assert [(c.field, c.message) for c in validate_create(rt, none)] == [
        ("spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")]


def pdb(selector=None, generation=1, **status):
    return {"metadata": {"name": "db", "namespace": "ns", "generation": generation},
            "spec": {"selector": selector}, "status": dict({"observedGeneration": 1}, **status)}


def pod(name, ready=True, labels=None, deleting=False):
    meta = {"name": name, "namespace": "ns", "labels": labels if labels is not None else {"app": "db"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_eviction_takes_one_disruption_or_refuses_with_kubes_message():
    status = take_disruption(pdb(disruptionsAllowed=1, currentHealthy=3, desiredHealthy=2), "p1", "T", False)
    assert status["disruptionsAllowed"] == 0 and status["disruptedPods"] == {"p1": "T"}
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    with pytest.raises(APIError) as refused:
        take_disruption(pdb(disruptionsAllowed=0, currentHealthy=2, desiredHealthy=2), "p1", "T", False)
    assert (refused.value.code, refused.value.message) == (
        429, "Cannot evict pod as it would violate the pod's disruption budget.")
    assert refused.value.causes[0].message == "The disruption budget db needs 2 healthy pods and has 2 currently"
    with pytest.raises(APIError) as stale:
        take_disruption(pdb(generation=2, disruptionsAllowed=5), "p1", "T", False)
    assert stale.value.causes[0].message == "The disruption budget db is still being processed by the server."
    assert stale.value.retry_after_seconds == 10


def test_budget_selectors_and_health_counting():
    pods = [pod("a"), pod("b", ready=False), pod("c", deleting=True), pod("other", labels={"app": "web"})]
    assert [p["metadata"]["name"] for p in selected_pods(pdb({"matchLabels": {"app": "db"}}), pods)] == \
        ["a", "b", "c"]
    assert len(selected_pods(pdb({}), pods)) == 4 and selected_pods(pdb(None), pods) == []
    assert not guards(pdb({}), pods[0])      # the eviction subresource: an empty selector guards nothing
    now = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.timezone.utc)
    budget = pdb({"matchLabels": {"app": "db"}}, disruptedPods={"a": "2026-01-01T00:00:30Z",
                                                                 "b": "2025-12-31T23:00:00Z"})
    kept, recheck = disrupted_pods(budget, pods, now)
    assert kept == {"a": "2026-01-01T00:00:30Z"} and recheck == 90.0
    assert count_healthy(pods[:3], kept) == 0 and count_healthy(pods[:3], {}) == 1
