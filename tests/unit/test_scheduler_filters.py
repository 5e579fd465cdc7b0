"""Scheduler filters and scores as pure functions: the reasons kube-scheduler gives, and which node wins."""

import random

import pytest

from kfab.objects.node_affinity import match_expression
from kfab.objects.taints import tolerates
from kfab.scheduler.filters import (REASON_AFFINITY, REASON_PORTS, REASON_TOO_MANY_PODS, REASON_UNSCHEDULABLE,
                                    node_fit_reasons, unschedulable_message)
from kfab.scheduler.nodeinfo import NodeInfo, PodUsage, pod_requests
from kfab.scheduler.scores import select_node


def node(name="n1", cpu="4", memory="8Gi", pods="110", labels=None, taints=None, unschedulable=False, ready="True"):
    spec = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return NodeInfo({"metadata": {"name": name, "labels": dict(labels or {}, **{"kubernetes.io/hostname": name})},
                     "spec": spec,
                     "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}, "conditions": conditions}})


def pod(cpu=None, memory=None, node_selector=None, tolerations=None, affinity=None, host_port=None, owner=None,
        init_cpu=None):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container = {"name": "c", "image": "x", "resources": {"requests": requests}}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    spec = {"containers": [container]}
    if init_cpu:
        spec["initContainers"] = [{"name": "i", "image": "x", "resources": {"requests": {"cpu": init_cpu}}}]
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": affinity}}}
    meta = {"name": "p", "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}]
    return {"metadata": meta, "spec": spec}


def test_fits_an_empty_ready_node():
    assert node_fit_reasons(pod(cpu="1"), node()) == []


def test_cpu_and_memory_requests_against_allocatable_minus_placed():
    info = node(cpu="2", memory="1Gi")
    info.add(PodUsage.of(pod(cpu="1500m", memory="512Mi")))
    assert node_fit_reasons(pod(cpu="500m", memory="512Mi"), info) == []
    assert node_fit_reasons(pod(cpu="600m"), info) == ["Insufficient cpu"]
    assert node_fit_reasons(pod(cpu="1", memory="600Mi"), info) == ["Insufficient cpu", "Insufficient memory"]


def test_init_containers_count_as_their_maximum_not_their_sum():
    assert pod_requests(pod(cpu="100m", init_cpu="2"))["cpu"] == 2000
    assert pod_requests(pod(cpu="3", init_cpu="2"))["cpu"] == 3000


def test_pod_count_limit():
    info = node(pods="1")
    info.add(PodUsage.of(pod()))
    assert node_fit_reasons(pod(), info) == [REASON_TOO_MANY_PODS]


def test_cordoned_node_is_refused_unless_tolerated():
    info = node(unschedulable=True)
    assert node_fit_reasons(pod(), info) == [REASON_UNSCHEDULABLE]
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert node_fit_reasons(pod(tolerations=tol), info) == []


def test_taints_need_a_matching_toleration():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    info = node(taints=[taint])
    assert node_fit_reasons(pod(), info) == ["node(s) had untolerated taint {dedicated: gpu}"]
    assert node_fit_reasons(pod(tolerations=[{"key": "dedicated", "value": "gpu"}]), info) == []
    assert node_fit_reasons(pod(tolerations=[{"key": "dedicated", "value": "cpu"}]), info) != []
    assert node_fit_reasons(pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]), info) == []
    assert node_fit_reasons(pod(tolerations=[{"operator": "Exists"}]), info) == []
    assert node_fit_reasons(pod(tolerations=[{"key": "dedicated", "operator": "Exists",
                                               "effect": "NoExecute"}]), info) != []
    assert node_fit_reasons(pod(), node(taints=[dict(taint, effect="PreferNoSchedule")])) == []


def test_toleration_semantics():
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}, taint)
    assert not tolerates({"key": "k", "operator": "Equal", "value": "w"}, taint)
    assert not tolerates({"operator": "Equal", "value": "v"}, taint)  # Equal needs a key
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)


def test_not_ready_nodes_are_refused_as_if_tainted():
    assert node_fit_reasons(pod(), node(ready="False")) == [
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    assert node_fit_reasons(pod(), node(ready="Unknown")) == [
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    tol = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]
    assert node_fit_reasons(pod(tolerations=tol), node(ready="Unknown")) == []


def test_node_selector():
    info = node(labels={"disk": "ssd"})
    assert node_fit_reasons(pod(node_selector={"disk": "ssd"}), info) == []
    assert node_fit_reasons(pod(node_selector={"disk": "hdd"}), info) == [REASON_AFFINITY]


@pytest.mark.parametrize("expr, fits", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "In", "values": ["c"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["c"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "gpu", "operator": "Exists"}, False),
    ({"key": "gpu", "operator": "DoesNotExist"}, True),
    ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
    ({"key": "cores", "operator": "Gt", "values": ["16"]}, False),
    ({"key": "cores", "operator": "Lt", "values": ["32"]}, True),
    ({"key": "zone", "operator": "Lt", "values": ["32"]}, False),   # not a number
])
def test_required_node_affinity_operators(expr, fits):
    labels = {"zone": "a", "cores": "16"}
    assert match_expression(expr, labels) is fits
    info = node(labels=labels)
    assert (node_fit_reasons(pod(affinity=[{"matchExpressions": [expr]}]), info) == []) is fits


def test_affinity_terms_are_ored_and_match_fields_name_the_node():
    info = node(name="n7", labels={"zone": "a"})
    terms = [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
             {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]
    assert node_fit_reasons(pod(affinity=terms), info) == []
    assert node_fit_reasons(pod(affinity=terms[:1]), info) == [REASON_AFFINITY]
    assert node_fit_reasons(pod(affinity=[{}]), info) == [REASON_AFFINITY]   # an empty term matches nothing


def test_host_ports_conflict():
    info = node()
    info.add(PodUsage.of(pod(host_port=8080)))
    assert node_fit_reasons(pod(host_port=8080), info) == [REASON_PORTS]
    assert node_fit_reasons(pod(host_port=8081), info) == []


def test_removing_a_pod_frees_its_resources_and_ports():
    info = node(cpu="1")
    usage = PodUsage.of(pod(cpu="1", host_port=80))
    info.add(usage)
    info.remove(usage)
    assert node_fit_reasons(pod(cpu="1", host_port=80), info) == []


def test_unschedulable_message_as_kube_scheduler_words_it():
    assert unschedulable_message(3, {"a": ["Insufficient cpu"], "b": ["Insufficient cpu"],
                                     "c": ["Insufficient cpu"]}) == "0/3 nodes are available: 3 Insufficient cpu."
    msg = unschedulable_message(3, {"a": [REASON_UNSCHEDULABLE], "b": ["Insufficient cpu", "Insufficient memory"],
                                    "c": ["Insufficient cpu"]})
    assert msg == ("0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, "
                   "2 Insufficient cpu.")
    assert unschedulable_message(0, {}) == "no nodes available to schedule pods"


def test_least_allocated_prefers_the_emptier_node():
    busy, idle = node("busy"), node("idle")
    busy.add(PodUsage.of(pod(cpu="3", memory="6Gi")))
    p = pod(cpu="500m")
    assert select_node(p, PodUsage.of(p), [busy, idle]).name == "idle"


def test_spread_puts_replicas_of_one_owner_on_different_nodes():
    a, b = node("a", cpu="64", memory="256Gi"), node("b", cpu="4", memory="8Gi")
    a.add(PodUsage.of(pod(owner="rs-1")))
    p = pod(owner="rs-1")
    # a is far emptier, but already runs a replica of the same ReplicaSet.
    assert select_node(p, PodUsage.of(p), [a, b], random.Random(1)).name == "b"
    other = pod(owner="rs-2")
    assert select_node(other, PodUsage.of(other), [a, b], random.Random(1)).name == "a"
