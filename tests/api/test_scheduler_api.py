"""The scheduler through the API: pods land on nodes that fit, unschedulable pods say why (as kube-scheduler
words it) and are placed once something changes, taints/cordon/nodeSelector are respected, replicas spread."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client

from tests.api.hollow_cluster import hollow_cluster, pod_ready
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-scheduler"), {"sched-": 3})


@pytest.fixture
def ns(cluster):
    name = f"s-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core.delete_namespace(name)


def pod(name: str, cpu: str | None = None, **spec) -> dict:
    container = {"name": "c", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [container], **spec}}


def scheduled_condition(cluster, ns: str, name: str):
    p = cluster.core.read_namespaced_pod(name, ns)
    return next((c for c in p.status.conditions or [] if c.type == "PodScheduled"), None)


def wait_unschedulable(cluster, ns: str, name: str, message: str):
    def check():
        cond = scheduled_condition(cluster, ns, name)
        return cond if cond and cond.status == "False" and cond.message == message else None
    cond = wait_until(f"{name} to be Unschedulable with {message!r}", check, 30)
    assert cond.reason == "Unschedulable"
    assert cluster.core.read_namespaced_pod(name, ns).spec.node_name is None


def wait_bound(cluster, ns: str, name: str, timeout: float = 30) -> str:
    return wait_until(f"{name} to be bound", lambda: cluster.core.read_namespaced_pod(name, ns).spec.node_name, timeout)


def test_pods_are_bound_and_run(cluster, ns):
    cluster.kubectl("run", "plain", "--image=busybox", "-n", ns)
    node = wait_bound(cluster, ns, "plain")
    assert node in cluster.nodes
    wait_until("plain to run", lambda: pod_ready(cluster.core.read_namespaced_pod("plain", ns)), 30)
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "reason=Scheduled").stdout
    assert f"Successfully assigned {ns}/plain to {node}" in events


def test_insufficient_cpu_then_scheduled_when_resources_free_up(cluster, ns):
    # Each hollow node has 8 CPUs: three 5-CPU pods take one node each, a fourth fits nowhere.
    for i in range(3):
        cluster.core.create_namespaced_pod(ns, pod(f"big-{i}", cpu="5"))
    nodes = {wait_bound(cluster, ns, f"big-{i}") for i in range(3)}
    assert len(nodes) == 3
    cluster.core.create_namespaced_pod(ns, pod("big-3", cpu="5000m"))
    # Every pod has priority 0: evicting cannot make room (kube-scheduler's PostFilter says so too).
    wait_unschedulable(cluster, ns, "big-3", "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes "
                                             "are available: 3 No preemption victims found for incoming pod.")
    described = cluster.kubectl("describe", "pod", "big-3", "-n", ns).stdout
    assert "FailedScheduling" in described and "0/3 nodes are available: 3 Insufficient cpu." in described
    cluster.core.delete_namespaced_pod("big-0", ns, grace_period_seconds=0)
    assert wait_bound(cluster, ns, "big-3") in nodes


def test_pod_waits_for_a_matching_node_and_is_scheduled_when_it_appears(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("picky", nodeSelector={"kubernetes.io/hostname": "late-0"}))
    wait_unschedulable(cluster, ns, "picky", "0/3 nodes are available: 3 node(s) didn't match Pod's node "
                                             "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption "
                                             "is not helpful for scheduling.")
    cluster.add_nodes("late-", 1)
    assert wait_bound(cluster, ns, "picky") == "late-0"
    cluster.stop_nodes("late-")
    cluster.core.delete_node("late-0")
    cluster.nodes.remove("late-0")


def test_taints_cordon_and_node_affinity_are_respected(cluster, ns):
    a, b, c = cluster.nodes[:3]
    cluster.kubectl("taint", "node", a, "dedicated=db:NoSchedule")
    cluster.kubectl("cordon", b)
    try:
        cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=4", "-n", ns)
        wait_until("4 web pods bound",
                   lambda: len([p for p in cluster.core.list_namespaced_pod(ns, label_selector="app=web").items
                                if p.spec.node_name]) == 4, 30)
        assert {p.spec.node_name for p in cluster.core.list_namespaced_pod(ns, label_selector="app=web").items} == {c}

        tolerant = pod("tolerant", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                                 "effect": "NoSchedule"}],
                       affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                           "nodeSelectorTerms": [{"matchExpressions": [
                               {"key": "kubernetes.io/hostname", "operator": "In", "values": [a, b]}]}]}}})
        cluster.core.create_namespaced_pod(ns, tolerant)
        assert wait_bound(cluster, ns, "tolerant") == a   # b is cordoned, c is not in the affinity

        cluster.core.create_namespaced_pod(ns, pod("intolerant", nodeSelector={"kubernetes.io/hostname": a}))
        wait_unschedulable(cluster, ns, "intolerant",
                           "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                           "1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable. "
                           "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    finally:
        cluster.kubectl("taint", "node", a, "dedicated=db:NoSchedule-")
        cluster.kubectl("uncordon", b)
    assert wait_bound(cluster, ns, "intolerant") == a   # retried when the node changed


def test_replicas_spread_across_nodes(cluster, ns):
    cluster.kubectl("create", "deployment", "spread", "--image=nginx", "--replicas=6", "-n", ns)
    wait_until("6 pods bound",
               lambda: len([p for p in cluster.core.list_namespaced_pod(ns, label_selector="app=spread").items
                            if p.spec.node_name]) == 6, 30)
    per_node: dict[str, int] = {}
    for p in cluster.core.list_namespaced_pod(ns, label_selector="app=spread").items:
        per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
    assert sorted(per_node.values()) == [2, 2, 2]


def test_pods_of_another_scheduler_are_left_alone(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("other", schedulerName="someone-else"))
    cluster.kubectl("run", "marker", "--image=busybox", "-n", ns)
    wait_bound(cluster, ns, "marker")   # the scheduler is busy and would have seen both
    p = cluster.core.read_namespaced_pod("other", ns)
    assert p.spec.node_name is None and not p.status.conditions


def test_host_ports_conflict_keeps_pods_apart(cluster, ns):
    with_port = {"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]}
    for i in range(3):
        cluster.core.create_namespaced_pod(ns, {"metadata": {"name": f"hp-{i}"}, "spec": {"containers": [with_port]}})
    assert len({wait_bound(cluster, ns, f"hp-{i}") for i in range(3)}) == 3
    cluster.core.create_namespaced_pod(ns, {"metadata": {"name": "hp-3"}, "spec": {"containers": [with_port]}})
    wait_unschedulable(cluster, ns, "hp-3", "0/3 nodes are available: 3 node(s) didn't have free ports for the "
                                            "requested pod ports. preemption: 0/3 nodes are available: 3 No "
                                            "preemption victims found for incoming pod.")


def test_official_client_reads_the_unschedulable_condition(cluster, ns):
    """The official client reads the Unschedulable condition as kube's own types."""
    cluster.core.create_namespaced_pod(ns, pod("huge", cpu="1000"))
    wait_unschedulable(cluster, ns, "huge", "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes "
                                            "are available: 3 No preemption victims found for incoming pod.")
    assert isinstance(scheduled_condition(cluster, ns, "huge"), client.V1PodCondition)
