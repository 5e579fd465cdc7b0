"""Two `kfab scheduler --leader-elect` processes: only the holder of the Lease kube-system/kfab-scheduler binds
pods; when it is killed, the other takes over and binds the pods created meanwhile."""

from __future__ import annotations

import signal

import pytest
from kubernetes import client, config

from tests.api.conftest import start_server, stop_server
from tests.api.controllers_cluster import start_hollow_nodes, start_kfab, stop
from tests.waiting import wait_until


@pytest.fixture
def cluster(tmp_path):
    proc, server = start_server(tmp_path, "--disable-controllers")   # no in-process scheduler
    procs = [start_hollow_nodes(server.kubeconfig, tmp_path, 2, "le-")]
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    # No controllers: the default ServiceAccount pods run as (and admission requires) is made by hand.
    client.CoreV1Api(api).create_namespaced_service_account("default", {"metadata": {"name": "default"}})
    try:
        yield server, api, procs, tmp_path
    finally:
        api.close()
        for p in reversed(procs):
            stop(p)
        stop_server(proc)


def holder(api) -> str | None:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease("kfab-scheduler", "kube-system")
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    return lease.spec.holder_identity or None


def scheduled_by(core, pod: str) -> str | None:
    """The reportingInstance of the pod's Scheduled event: which scheduler bound it."""
    events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={pod},reason=Scheduled").items
    return events[0].reporting_instance if events else None


def test_only_the_leader_schedules_and_the_other_takes_over(cluster):
    server, api, procs, tmp = cluster
    core = client.CoreV1Api(api)
    schedulers = {}
    for ident in ("sched-a", "sched-b"):
        schedulers[ident] = start_kfab("scheduler", "--kubeconfig", str(server.kubeconfig), "--leader-elect",
                                       "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                                       "--leader-elect-retry-period", "1", "--leader-elect-identity", ident,
                                       log=tmp / f"{ident}.log")
        procs.append(schedulers[ident])
    leader = wait_until("a scheduler to hold the lease", lambda: holder(api), 30)
    assert leader in schedulers
    core.create_namespaced_pod("default", {"metadata": {"name": "first"},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    wait_until("first bound", lambda: core.read_namespaced_pod("first", "default").spec.node_name, 30)
    assert wait_until("first's Scheduled event", lambda: scheduled_by(core, "first"), 30) == leader

    schedulers[leader].send_signal(signal.SIGKILL)   # no clean release: the other waits out the lease
    schedulers[leader].wait(timeout=10)
    core.create_namespaced_pod("default", {"metadata": {"name": "second"},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    other = next(i for i in schedulers if i != leader)
    wait_until(f"{other} to take the lease", lambda: holder(api) == other, 30)
    wait_until("second bound by the new leader",
               lambda: core.read_namespaced_pod("second", "default").spec.node_name, 30)
    assert wait_until("second's Scheduled event", lambda: scheduled_by(core, "second"), 30) == other
