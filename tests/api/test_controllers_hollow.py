"""Hollow nodes (`kfab hollow-node`): what the control plane sees of a kubelet - a Node with capacity, a Lease
kept fresh, pods made Running/Ready with addresses, graceful deletions finished."""

from __future__ import annotations

import ipaddress

import pytest
from kubernetes import client

from tests.api.controllers_cluster import running_cluster, start_hollow_nodes, stop
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("kfab-hollow"), nodes=2)


def test_hollow_nodes_register_with_capacity_and_renew_their_leases(cluster):
    for name in cluster.nodes:
        node = cluster.core.read_node(name)
        assert node.status.capacity["pods"] == "110" and node.status.allocatable["cpu"]
        assert ipaddress.ip_network(node.spec.pod_cidr).prefixlen == 24
        assert {a.type for a in node.status.addresses} == {"InternalIP", "Hostname"}
    leases = client.CoordinationV1Api(cluster.api)
    first = leases.read_namespaced_lease(cluster.nodes[0], "kube-node-lease")
    assert first.spec.holder_identity == cluster.nodes[0]
    assert first.metadata.owner_references[0].kind == "Node"
    wait_until("the lease to be renewed",
               lambda: leases.read_namespaced_lease(cluster.nodes[0], "kube-node-lease").spec.renew_time
               > first.spec.renew_time, 15)


def test_pods_run_with_addresses_and_honour_readiness_delay(cluster):
    ns = "hollow-pods"
    cluster.kubectl("create", "namespace", ns)
    cluster.core.create_namespaced_pod(ns, {"metadata": {"name": "slow"}, "spec": {"containers": [{
        "name": "web", "image": "nginx", "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 2}}]}})
    pod = wait_until("the pod Running",
                     lambda: (lambda p: p if p.status.phase == "Running" else None)(
          cluster.core.read_namespaced_pod("slow", ns)), 30)
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "False"  # the probe's initial delay has not passed yet
    node = cluster.core.read_node(pod.spec.node_name)
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.spec.pod_cidr)
    assert pod.status.host_ip == next(a.address for a in node.status.addresses if a.type == "InternalIP")
    assert pod.status.container_statuses[0].state.running is not None
    wait_until("Ready",
               lambda: any(c.type == "Ready" and c.status == "True"
                           for c in cluster.core.read_namespaced_pod("slow", ns).status.conditions), 15)
    # A graceful delete (30 s by default) ends as soon as the "containers" stopped; kubectl waits for it.
    cluster.kubectl("delete", "pod", "slow", "-n", ns, "--timeout=20s")
    assert cluster.core.list_namespaced_pod(ns).items == []


def _addresses(cluster, names: list[str]) -> dict[str, tuple[str, str]]:
    nodes = {n.metadata.name: n for n in cluster.core.list_node().items}
    return {name: (nodes[name].spec.pod_cidr,
                   next(a.address for a in nodes[name].status.addresses if a.type == "InternalIP"))
            for name in names}


def _registered_ready(cluster, names: list[str]) -> bool:
    nodes = {n.metadata.name: n for n in cluster.core.list_node().items}
    return all(name in nodes and any(c.type == "Ready" and c.status == "True"
                                     for c in nodes[name].status.conditions or []) for name in names)


def test_hollow_node_processes_never_share_addresses_and_a_restart_keeps_them(cluster):
    groups = {"second-": ["second-0", "second-1"], "third-": ["third-0", "third-1"]}
    # Started together, so both claim numbers at the same moment (the table's resourceVersion decides).
    procs = [start_hollow_nodes(cluster.kubeconfig, cluster.data_dir, 2, prefix) for prefix in groups]
    everyone = cluster.nodes + groups["second-"] + groups["third-"]
    try:
        wait_until("both groups to register Ready", lambda: _registered_ready(cluster, everyone), 30)
        before = _addresses(cluster, everyone)
        cidrs, ips = [c for c, _ in before.values()], [ip for _, ip in before.values()]
        assert len(set(cidrs)) == len(everyone) and len(set(ips)) == len(everyone), before
    finally:
        for proc in procs:
            stop(proc)
    for name in groups["second-"]:
        cluster.core.delete_node(name)
    again = start_hollow_nodes(cluster.kubeconfig, cluster.data_dir, 2, "second-")
    try:
        wait_until("second- registered again", lambda: _registered_ready(cluster, groups["second-"]), 30)
        assert _addresses(cluster, groups["second-"]) == {n: before[n] for n in groups["second-"]}
    finally:
        stop(again)
        for name in groups["second-"] + groups["third-"]:  # stopped: leave no NotReady nodes to later tests
            cluster.core.delete_node(name)
