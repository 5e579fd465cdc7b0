"""Garbage collection by ownerReferences and namespace deletion, through kubectl and the official client."""

from __future__ import annotations

import secrets
import time

import pytest
from kubernetes.client import ApiException

from tests.api.controllers_cluster import running_cluster
from tests.api.test_controllers_deployment import active_pods, deployment, wait_rolled_out
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("kfab-gc"))


@pytest.fixture
def ns(cluster):
    name = f"gc-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        cluster.core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


def read_or_none(read, *args):
    try:
        return read(*args)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def exists(read, *args) -> bool:
    return read_or_none(read, *args) is not None


def test_deleting_a_namespace_deletes_everything_in_it(cluster):
    ns = f"doomed-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", ns)
    cluster.apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    cluster.core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"p": "x"}})
    cluster.core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    wait_rolled_out(cluster, ns, "web")

    cluster.kubectl("delete", "namespace", ns, "--timeout=60s", timeout=90)  # kubectl waits until it is gone
    assert not exists(cluster.core.read_namespace, ns)
    for kind in ("pods", "deployments", "replicasets", "configmaps", "secrets", "services", "endpoints"):
        listed = cluster.kubectl("get", kind, "-n", ns, "-o", "name").stdout.strip()
        assert listed == "", f"{kind} left in the deleted namespace: {listed}"


def test_background_deletion_removes_replicasets_and_pods(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("bg", replicas=3))
    wait_rolled_out(cluster, ns, "bg")
    cluster.kubectl("delete", "deployment", "bg", "-n", ns)  # kubectl's default: background
    wait_until("ReplicaSet and pods collected",
               lambda: not cluster.apps.list_namespaced_replica_set(ns).items
               and not cluster.core.list_namespaced_pod(ns).items, 30)


def test_foreground_deletion_removes_dependents_before_the_owner(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("fg", replicas=3))
    wait_rolled_out(cluster, ns, "fg")
    cluster.apps.delete_namespaced_deployment("fg", ns, propagation_policy="Foreground")
    seen_waiting = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # Owner first, then dependents: once the owner is gone, its dependents must already be gone. The owner
        # is read once, before the dependents (read again after them, it may be gone by then).
        owner = read_or_none(cluster.apps.read_namespaced_deployment, "fg", ns)
        dependents = (len(cluster.apps.list_namespaced_replica_set(ns).items)
                      + len(cluster.core.list_namespaced_pod(ns).items))
        if owner is None:
            assert dependents == 0, "the Deployment went before its ReplicaSet and pods"
            break
        if dependents:
            assert "foregroundDeletion" in (owner.metadata.finalizers or [])
            seen_waiting = True
    else:
        raise AssertionError("the Deployment was not deleted within 30s")
    assert seen_waiting, "the Deployment never waited for its dependents"


def test_orphan_deletion_keeps_replicaset_and_pods_without_owner(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("or", replicas=2))
    wait_rolled_out(cluster, ns, "or")
    cluster.kubectl("delete", "deployment", "or", "-n", ns, "--cascade=orphan")
    wait_until("the Deployment gone", lambda: not exists(cluster.apps.read_namespaced_deployment, "or", ns), 30)
    sets = cluster.apps.list_namespaced_replica_set(ns).items
    assert len(sets) == 1 and not sets[0].metadata.owner_references
    pods = active_pods(cluster, ns, "or")
    assert len(pods) == 2 and all(p.metadata.owner_references[0].name == sets[0].metadata.name for p in pods)
    # the orphaned ReplicaSet still does its job
    cluster.kubectl("delete", "pod", pods[0].metadata.name, "-n", ns)
    wait_until("a replacement pod",
               lambda: len([p for p in active_pods(cluster, ns, "or") if p.status.phase == "Running"]) == 2
               and pods[0].metadata.name not in {p.metadata.name for p in active_pods(cluster, ns, "or")}, 30)
    # the same Deployment created again adopts the ReplicaSet instead of starting over
    cluster.apps.create_namespaced_deployment(ns, deployment("or", replicas=2))
    wait_until("the ReplicaSet adopted",
               lambda: cluster.apps.read_namespaced_replica_set(sets[0].metadata.name, ns).metadata.owner_references,
               30)
    wait_rolled_out(cluster, ns, "or")
    assert [rs.metadata.name for rs in cluster.apps.list_namespaced_replica_set(ns).items] == [sets[0].metadata.name]


def test_an_object_whose_owner_does_not_exist_is_collected(cluster, ns):
    owner = cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    ghost = dict(ref, name="ghost", uid="00000000-0000-0000-0000-000000000000")
    cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "orphaned", "ownerReferences": [ghost]}})
    cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "half", "ownerReferences": [ref, ghost]}})
    wait_until("orphaned collected", lambda: not exists(cluster.core.read_namespaced_config_map, "orphaned", ns), 30)
    wait_until("the dangling reference dropped",
               lambda: len(cluster.core.read_namespaced_config_map("half", ns).metadata.owner_references) == 1, 30)
    assert cluster.core.read_namespaced_config_map("child", ns).metadata.owner_references[0].name == "owner"
    cluster.core.delete_namespaced_config_map("owner", ns)
    wait_until("dependents collected",
               lambda: not exists(cluster.core.read_namespaced_config_map, "child", ns)
               and not exists(cluster.core.read_namespaced_config_map, "half", ns), 30)
