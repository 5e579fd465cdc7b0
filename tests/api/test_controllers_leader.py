"""Two `kfab controller-manager --leader-elect` processes: only the Lease holder acts; when it dies, the other
takes over. The API server runs without in-process controllers here (`kfab server --disable-controllers`)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.api.controllers_cluster import running_cluster, start_kfab, stop
from tests.api.test_controllers_deployment import deployment, wait_rolled_out
from tests.waiting import wait_until

ELECTION = ("--leader-elect", "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
            "--leader-elect-retry-period", "0.5")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-leader")
    for c in running_cluster(data_dir, server_args=("--disable-controllers",)):
        scheduler = start_kfab("scheduler", "--kubeconfig", str(c.kubeconfig), log=data_dir / "scheduler.log")
        try:
            yield c
        finally:
            stop(scheduler)


def holder(cluster) -> str | None:
    try:
        lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease("kfab-controller-manager", "kube-system")
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    return lease.spec.holder_identity or None


def reporters(cluster, ns: str, reason: str | None = None) -> set[str]:
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    return {e.get("reportingInstance") for e in events if (reason is None or e["reason"] == reason)
            and e.get("reportingComponent", "").endswith("-controller")}  # the scheduler reports too


def test_only_the_leader_acts_and_the_other_takes_over_when_it_dies(cluster):
    managers = {}
    try:
        for name in ("cm-a", "cm-b"):
            managers[name] = start_kfab("controller-manager", "--kubeconfig", str(cluster.kubeconfig), *ELECTION,
                                        "--leader-elect-identity", name, log=cluster.data_dir / f"{name}.log")
        leader = wait_until("a leader", lambda: holder(cluster), 30)
        assert leader in managers
        other = next(n for n in managers if n != leader)

        cluster.kubectl("create", "namespace", "ha")
        cluster.apps.create_namespaced_deployment("ha", deployment("web", replicas=2))
        wait_rolled_out(cluster, "ha", "web")
        wait_until("the Deployment's events", lambda: reporters(cluster, "ha", "ScalingReplicaSet"), 10)
        assert reporters(cluster, "ha") == {leader}, "only the leader acted"

        managers[leader].kill()  # no clean stop: the lease must expire
        managers[leader].wait(timeout=10)
        wait_until(f"{other} to take the lease", lambda: holder(cluster) == other, 30)

        cluster.kubectl("scale", "deployment/web", "--replicas=4", "-n", "ha")
        wait_rolled_out(cluster, "ha", "web")
        assert cluster.apps.read_namespaced_deployment("web", "ha").status.available_replicas == 4
        wait_until("the new leader's events", lambda: other in reporters(cluster, "ha", "ScalingReplicaSet"), 10)
        assert managers[other].poll() is None
    finally:
        for proc in managers.values():
            stop(proc)
