"""PodDisruptionBudgets and pods/eviction through real kubectl, the official client and kfab's own drain, on
hollow nodes: budget status as the disruption controller keeps it, 429 with kube's message while a budget has
no disruption to give, eviction once it has, `kubectl drain` and `kfab drain` stopping at a budget and going
on once scaling up makes room."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kfab.client import Client
from kfab.ops import drain as drain_mod
from tests.api.conftest import KUBECTL
from tests.api.hollow_cluster import hollow_cluster, pod_ready, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-pdb"), {"pdb-": 2})


@pytest.fixture
def ns(cluster):
    name = f"pdb-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core.delete_namespace(name)
    for node in cluster.nodes:
        cluster.kubectl("uncordon", node)


def deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}


def budget(name: str, app: str, **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": dict(spec, selector={"matchLabels": {"app": app}})}


def ready_pods(cluster, ns: str, app: str) -> list:
    return [p for p in cluster.core.list_namespaced_pod(ns, label_selector=f"app={app}").items
            if pod_ready(p) and p.metadata.deletion_timestamp is None]


def pdb_status(cluster, ns: str, name: str, **want):
    def check():
        pdb = client.PolicyV1Api(cluster.api).read_namespaced_pod_disruption_budget(name, ns)
        got = {k: getattr(pdb.status, k) for k in want}
        return pdb if got == want and pdb.status.observed_generation == pdb.metadata.generation else None
    return wait_for(check, 30, f"budget {name} status {want}")


def evict(cluster, ns: str, pod: str):
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns))
    return cluster.core.create_namespaced_pod_eviction(pod, ns, body)


def test_budget_status_and_eviction_answers(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(deployment("web", 2)))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(budget("web", "web", minAvailable=2)))
    wait_for(lambda: len(ready_pods(cluster, ns, "web")) == 2, 30, "two ready web pods")
    pdb = pdb_status(cluster, ns, "web", current_healthy=2, desired_healthy=2, expected_pods=2,
                     disruptions_allowed=0)
    cond = next(c for c in pdb.status.conditions if c.type == "DisruptionAllowed")
    assert (cond.status, cond.reason) == ("False", "InsufficientPods")
    table = cluster.kubectl("get", "pdb", "web", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["web", "2", "N/A", "0"]

    victim = ready_pods(cluster, ns, "web")[0].metadata.name
    with pytest.raises(ApiException) as refused:
        evict(cluster, ns, victim)
    assert refused.value.status == 429
    status = json.loads(refused.value.body)
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget", "message": "The disruption budget web "
                                            "needs 2 healthy pods and has 2 currently"}]

    cluster.kubectl("scale", "deployment/web", "--replicas=3", "-n", ns)
    pdb_status(cluster, ns, "web", current_healthy=3, expected_pods=3, disruptions_allowed=1)
    evict(cluster, ns, victim)
    pdb = client.PolicyV1Api(cluster.api).read_namespaced_pod_disruption_budget("web", ns)
    assert victim in (pdb.status.disrupted_pods or {}) or pdb.status.disruptions_allowed == 0
    wait_for(lambda: victim not in [p.metadata.name for p in cluster.core.list_namespaced_pod(ns).items], 30,
             "the evicted pod to be gone")
    pdb_status(cluster, ns, "web", current_healthy=3, disruptions_allowed=1)   # its replacement is ready

    # A second budget over the same pods: kube's eviction refuses to choose (500).
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(budget("web2", "web", maxUnavailable="50%")))
    pdb_status(cluster, ns, "web2", expected_pods=3, desired_healthy=1, disruptions_allowed=2)
    with pytest.raises(ApiException) as twice:
        evict(cluster, ns, ready_pods(cluster, ns, "web")[0].metadata.name)
    assert twice.value.status == 500 and "more than one PodDisruptionBudget" in json.loads(twice.value.body)["message"]


def test_budget_validation_and_kubectl_create_pdb(cluster, ns):
    # kubectl create pdb sends protobuf
    out = cluster.kubectl("create", "pdb", "half", "-n", ns, "--selector=app=x", "--min-available=50%").stdout
    assert out.strip() == "poddisruptionbudget.policy/half created"
    pdb = client.PolicyV1Api(cluster.api).read_namespaced_pod_disruption_budget("half", ns)
    assert pdb.spec.min_available == "50%" and pdb.spec.selector.match_labels == {"app": "x"}
    both = budget("both", "x", minAvailable=1, maxUnavailable=1)
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(both), check=False)
    assert "minAvailable and maxUnavailable cannot be both set" in out.stderr
    pct = budget("pct", "x", minAvailable="120%")
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pct), check=False)
    assert 'spec.minAvailable: Invalid value: "120%": must not be greater than 100%' in out.stderr


def _stuck_and_released(cluster, ns: str, start, stuck_text: str, finish) -> None:
    """Start a drain; wait until it reports the budget refusing; scale up; the drain must then finish."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(deployment("db", 2)))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(budget("db", "db", minAvailable=2)))
    wait_for(lambda: {p.spec.node_name for p in ready_pods(cluster, ns, "db")} == {"pdb-0", "pdb-1"}, 30,
             "a ready db pod on each node")
    pdb_status(cluster, ns, "db", current_healthy=2, disruptions_allowed=0)
    output = start()
    wait_for(lambda: stuck_text in output(), 30, "the drain to report the budget")
    assert ready_pods(cluster, ns, "db") and any(p.spec.node_name == "pdb-0" for p in ready_pods(cluster, ns, "db"))
    cluster.kubectl("scale", "deployment/db", "--replicas=3", "-n", ns)
    finish()
    assert {p.spec.node_name for p in ready_pods(cluster, ns, "db")} == {"pdb-1"}


def test_kubectl_drain_waits_for_the_budget(cluster, ns):
    lines: list[str] = []
    proc = None

    def start():
        nonlocal proc
        proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "drain", "pdb-0",
                                 "--ignore-daemonsets", "--timeout=90s"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        return lambda: "".join(lines)

    def finish():
        assert proc.wait(timeout=90) == 0, "".join(lines)
        assert "node/pdb-0 drained" in "".join(lines)

    # kubectl drain looks each DaemonSet up before it leaves the DaemonSet's pod alone (--ignore-daemonsets).
    agent = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                 "metadata": {"labels": {"app": "agent"}},
                 "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}}}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(agent))
    wait_for(lambda: len(ready_pods(cluster, ns, "agent")) == 2, 30, "an agent pod on each node")
    try:
        _stuck_and_released(cluster, ns, start, "Cannot evict pod as it would violate the pod's disruption budget",
                            finish)
        assert f"Warning: ignoring DaemonSet-managed Pods: {ns}/agent-" in "".join(lines)
        assert "pdb-0" in {p.spec.node_name for p in ready_pods(cluster, ns, "agent")}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def test_kfab_drain_waits_for_the_budget(cluster, ns):
    lines: list[str] = []
    result: dict = {}

    async def run_drain():
        async with Client.from_kubeconfig(cluster.kubeconfig) as api:
            return await drain_mod.drain(api, "pdb-0", timeout=90, log=lines.append)

    def start():
        thread = threading.Thread(target=lambda: result.setdefault("removed", asyncio.run(run_drain())),
                                  daemon=True)
        thread.start()
        result["thread"] = thread
        return lambda: "\n".join(lines)

    def finish():
        result["thread"].join(90)
        assert result.get("removed"), "\n".join(lines)

    _stuck_and_released(cluster, ns, start, "The disruption budget db needs 2 healthy pods and has 2 currently",
                        finish)
    assert any("(will retry after 5s)" in line for line in lines)
