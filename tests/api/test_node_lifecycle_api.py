"""Node loss through the API: when a node stops renewing its Lease it becomes Unknown and tainted
unreachable, its pods are marked not ready, then evicted when the toleration DefaultTolerationSeconds gave them
runs out, and their controllers replace them on the remaining nodes - with kfab server's grace period (20 s, the
hollow nodes renew every 10 s) and --default-unreachable-toleration-seconds 10 instead of upstream's 300."""

from __future__ import annotations

import pytest

from tests.api.hollow_cluster import hollow_cluster, pod_ready
from tests.waiting import wait_until

NS = "default"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-nodeloss"), {"keep-": 2, "lose-": 1},
                              "--default-unreachable-toleration-seconds", "10")


def running_ready_on(cluster, app: str) -> dict[str, str]:
    return {p.metadata.name: p.spec.node_name
            for p in cluster.core.list_namespaced_pod(NS, label_selector=f"app={app}").items
            if pod_ready(p) and not p.metadata.deletion_timestamp}


def test_pods_of_a_lost_node_are_replaced_on_other_nodes(cluster):
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=6")
    # A pod that tolerates unreachable nodes forever stays where it is.
    cluster.core.create_namespaced_pod(NS, {
        "metadata": {"name": "patient", "labels": {"app": "patient"}},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "lose-0"},
                 "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute"}],
                 "containers": [{"name": "c", "image": "busybox"}]}})
    placed = wait_until("6 web pods Running",
                        lambda: (lambda m: m if len(m) == 6 else None)(running_ready_on(cluster, "web")), 60)
    lost = sorted(name for name, node in placed.items() if node == "lose-0")
    assert lost, f"the spread put no pod on lose-0: {placed}"
    tolerations = cluster.core.read_namespaced_pod(lost[0], NS).spec.tolerations
    assert {(t.key, t.toleration_seconds) for t in tolerations} == {
        ("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 10)}   # DefaultTolerationSeconds
    wait_until("patient Running", lambda: running_ready_on(cluster, "patient"), 30)

    cluster.stop_nodes("lose-")

    def unknown():
        node = cluster.core.read_node("lose-0")
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        return node if ready.status == "Unknown" else None
    node = wait_until("lose-0 Ready=Unknown", unknown, 60)
    assert next(c for c in node.status.conditions if c.type == "Ready").reason == "NodeStatusUnknown"
    wait_until("unreachable taints",
               lambda: {(t.key, t.effect) for t in cluster.core.read_node("lose-0").spec.taints or []} >= {
          ("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")}, 20)
    assert "NotReady" in cluster.kubectl("get", "node", "lose-0").stdout

    # Replaced: 6 Running and Ready again, none on the lost node, the lost ones marked for deletion.
    replaced = wait_until("6 web pods Running on the remaining nodes",
                          lambda: (lambda m: m if len(m) == 6 and "lose-0" not in m.values() else None)(
          running_ready_on(cluster, "web")), 60)
    assert set(replaced.values()) <= {"keep-0", "keep-1"}
    for name in lost:
        assert cluster.core.read_namespaced_pod(name, NS).metadata.deletion_timestamp is not None
    patient = cluster.core.read_namespaced_pod("patient", NS)
    assert patient.metadata.deletion_timestamp is None and patient.spec.node_name == "lose-0"
    assert not pod_ready(patient)   # marked not ready: Services stop sending it traffic

    # The node comes back: it reports Ready, the taints go.
    cluster.add_nodes("lose-", 1)
    wait_until("taints removed",
               lambda: not [t for t in cluster.core.read_node("lose-0").spec.taints or []
                            if t.key == "node.kubernetes.io/unreachable"], 30)
