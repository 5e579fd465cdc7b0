"""DaemonSets through real kubectl and the official client on hollow nodes, placed by the real scheduler:
one pod per eligible node (a node added later gets one, a label change moves them, a NoExecute taint evicts),
RollingUpdate within maxUnavailable, `kubectl rollout status|history|undo ds/X`."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from tests.api.hollow_cluster import hollow_cluster, pod_ready
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-ds"), {"ds-": 2})


@pytest.fixture
def ns(cluster):
    name = f"ds-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core.delete_namespace(name)


def daemonset(name: str, image: str = "nginx:1.25", node_selector: dict | None = None,
              rolling: dict | None = None) -> str:
    spec = {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "agent", "image": image}]}}}
    if node_selector:
        spec["template"]["spec"]["nodeSelector"] = node_selector
    if rolling:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    return json.dumps({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": spec})


def pods_by_node(cluster, ns: str, app: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in cluster.core.list_namespaced_pod(ns, label_selector=f"app={app}").items:
        if p.metadata.deletion_timestamp is None:
            out.setdefault(p.spec.node_name or "", []).append(p)
    return out


def one_ready_pod_on(cluster, ns: str, app: str, nodes: set[str]) -> bool:
    by_node = pods_by_node(cluster, ns, app)
    return set(by_node) == nodes and all(len(ps) == 1 and pod_ready(ps[0]) for ps in by_node.values())


def all_nodes(cluster) -> set[str]:
    return {n.metadata.name for n in cluster.core.list_node().items}


def test_daemonset_puts_one_pod_on_every_node_and_follows_nodes(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=daemonset("agent"))
    nodes = all_nodes(cluster)
    wait_until("a ready agent pod on every node", lambda: one_ready_pod_on(cluster, ns, "agent", nodes), 30)
    pod = pods_by_node(cluster, ns, "agent")["ds-0"][0]
    # Pinned by node affinity and bound by the scheduler, as kube's DaemonSet controller does it.
    terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    assert [(f.key, f.operator, f.values) for f in terms[0].match_fields] == [("metadata.name", "In", ["ds-0"])]
    tolerated = {(t.key, t.effect) for t in pod.spec.tolerations}
    assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule")} <= tolerated
    assert pod.metadata.labels["pod-template-generation"] == "1" and pod.metadata.labels["controller-revision-hash"]

    ds = wait_until("status to count the available pods",
                    lambda: (lambda d: d if d.status.number_available == len(nodes) else None)(
          cluster.apps.read_namespaced_daemon_set("agent", ns)), 20)
    assert (ds.status.desired_number_scheduled, ds.status.current_number_scheduled, ds.status.number_ready,
            ds.status.updated_number_scheduled, ds.status.number_misscheduled) == (len(nodes), len(nodes),
                                                                                  len(nodes), len(nodes), 0)
    assert ds.status.observed_generation == ds.metadata.generation
    table = cluster.kubectl("get", "ds", "agent", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE",
                                "SELECTOR", "AGE"]
    assert table[1].split()[:7] == ["agent"] + [str(len(nodes))] * 5 + ["<none>"]

    added = cluster.add_nodes("ds-late-", 1)
    wait_until("a pod on the added node", lambda: one_ready_pod_on(cluster, ns, "agent", nodes | set(added)), 30)

    # A NoExecute taint the template does not tolerate takes the pod off that node; removing it brings one back.
    cluster.kubectl("taint", "node", added[0], "dedicated=db:NoExecute")
    wait_until("the tainted node to lose its pod", lambda: added[0] not in pods_by_node(cluster, ns, "agent"), 30)
    cluster.kubectl("taint", "node", added[0], "dedicated=db:NoExecute-")
    wait_until("the pod back after untaint", lambda: one_ready_pod_on(cluster, ns, "agent", nodes | set(added)), 30)

    # A Node that is gone for good (its agent stopped, the Node deleted) leaves no daemon pod behind.
    cluster.stop_nodes("ds-late-")
    cluster.kubectl("delete", "node", added[0])
    wait_until("the removed node's pod to be gone",
               lambda: set(pods_by_node(cluster, ns, "agent")) == nodes and not [
          p for p in cluster.core.list_namespaced_pod(ns).items if p.spec.node_name == added[0]], 30)


def test_node_selector_follows_node_labels(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=daemonset("edge", node_selector={"kfab-test/edge": "yes"}))
    ds = wait_until("the DaemonSet to be observed",
                    lambda: (lambda d: d if d.status.observed_generation else None)(
          cluster.apps.read_namespaced_daemon_set("edge", ns)), 20)
    assert ds.status.desired_number_scheduled == 0 and not pods_by_node(cluster, ns, "edge")
    cluster.kubectl("label", "node", "ds-1", "kfab-test/edge=yes")
    try:
        wait_until("a pod on the labelled node", lambda: one_ready_pod_on(cluster, ns, "edge", {"ds-1"}), 30)
    finally:
        cluster.kubectl("label", "node", "ds-1", "kfab-test/edge-")
    wait_until("the pod gone once the label is", lambda: not pods_by_node(cluster, ns, "edge"), 30)


class ReadyCounter:
    """Watches the DaemonSet's pods and records, after every event, how many nodes have a ready pod."""

    def __init__(self, core, ns: str, app: str, nodes: int):
        self.nodes = nodes
        self.ready: dict[str, bool] = {}
        self.node_of: dict[str, str] = {}
        self.lowest: int | None = None
        self.log: list[tuple] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, ns, app), daemon=True)
        self._thread.start()

    def _run(self, core, ns: str, app: str) -> None:
        try:
            for ev in self._watch.stream(core.list_namespaced_pod, ns, label_selector=f"app={app}",
                                         timeout_seconds=120):
                p = ev["object"]
                self.ready[p.metadata.name] = ev["type"] != "DELETED" and p.metadata.deletion_timestamp is None \
                    and pod_ready(p)
                self.node_of[p.metadata.name] = p.spec.node_name or ""
                nodes_ready = len({self.node_of[n] for n, ok in self.ready.items() if ok})
                name = p.metadata.name
                self.log.append((ev["type"], name, self.node_of[name], self.ready[name], nodes_ready))
                if len(self.ready) >= self.nodes:   # the initial listing is complete
                    self.lowest = nodes_ready if self.lowest is None else min(self.lowest, nodes_ready)
        except Exception:  # noqa: BLE001 - cut when the test stops it
            pass

    def stop(self) -> None:
        self._watch.stop()


def test_rolling_update_rollout_status_history_and_undo(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=daemonset("roll", "nginx:1.25"))
    nodes = all_nodes(cluster)
    wait_until("the first rollout", lambda: one_ready_pod_on(cluster, ns, "roll", nodes), 30)
    cluster.kubectl("rollout", "status", "ds/roll", "-n", ns, "--timeout=30s", timeout=40)
    counter = ReadyCounter(cluster.core, ns, "roll", len(nodes))
    wait_until("the watch to list the pods", lambda: len(counter.ready) == len(nodes), 10)
    try:
        cluster.kubectl("set", "image", "ds/roll", "agent=nginx:1.26", "-n", ns)
        out = cluster.kubectl("rollout", "status", "ds/roll", "-n", ns, "--timeout=60s", timeout=70).stdout
        assert 'daemon set "roll" successfully rolled out' in out
    finally:
        counter.stop()
    images = {p.spec.containers[0].image for ps in pods_by_node(cluster, ns, "roll").values() for p in ps}
    assert images == {"nginx:1.26"}
    # maxUnavailable 1 (the default): never more than one node without a ready pod during the rollout.
    assert counter.lowest is not None and counter.lowest >= len(nodes) - 1, "\n".join(map(str, counter.log))

    history = cluster.kubectl("rollout", "history", "ds/roll", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"], history
    assert "nginx:1.25" in cluster.kubectl("rollout", "history", "ds/roll", "-n", ns, "--revision=1").stdout
    assert cluster.kubectl("rollout", "undo", "ds/roll", "-n", ns).stdout.strip() == "daemonset.apps/roll rolled back"
    cluster.kubectl("rollout", "status", "ds/roll", "-n", ns, "--timeout=60s", timeout=70)
    wait_until("pods of the template rolled back to",
               lambda: {p.spec.containers[0].image for ps in pods_by_node(cluster, ns, "roll").values()
                        for p in ps} == {"nginx:1.25"}, 30)
    history = cluster.kubectl("rollout", "history", "ds/roll", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["2", "3"], history
    ds = cluster.apps.read_namespaced_daemon_set("roll", ns)
    assert ds.metadata.annotations["deprecated.daemonset.template.generation"] == "3"


def test_max_surge_starts_the_new_pod_before_the_old_one_goes(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-",
                    input=daemonset("surge", rolling={"maxSurge": 1, "maxUnavailable": 0}))
    nodes = all_nodes(cluster)
    wait_until("the first rollout", lambda: one_ready_pod_on(cluster, ns, "surge", nodes), 30)
    counter = ReadyCounter(cluster.core, ns, "surge", len(nodes))
    wait_until("the watch to list the pods", lambda: len(counter.ready) == len(nodes), 10)
    try:
        cluster.kubectl("set", "image", "ds/surge", "agent=nginx:1.26", "-n", ns)
        cluster.kubectl("rollout", "status", "ds/surge", "-n", ns, "--timeout=60s", timeout=70)
    finally:
        counter.stop()
    # every node kept a ready pod throughout
    assert counter.lowest == len(nodes), "\n".join(map(str, counter.log))
    wait_until("one pod per node after the surge", lambda: one_ready_pod_on(cluster, ns, "surge", nodes), 30)


def test_on_delete_replaces_only_pods_the_user_deletes(cluster, ns):
    manifest = json.loads(daemonset("od"))
    manifest["spec"]["updateStrategy"] = {"type": "OnDelete"}
    cluster.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=json.dumps(manifest))
    nodes = all_nodes(cluster)
    wait_until("the first pods", lambda: one_ready_pod_on(cluster, ns, "od", nodes), 30)
    cluster.kubectl("set", "image", "ds/od", "agent=nginx:1.26", "-n", ns)
    ds = wait_until("the new template to be observed",
                    lambda: (lambda d: d if d.status.observed_generation == d.metadata.generation else None)(
          cluster.apps.read_namespaced_daemon_set("od", ns)), 20)
    assert not ds.status.updated_number_scheduled
    victim = pods_by_node(cluster, ns, "od")["ds-0"][0].metadata.name
    cluster.kubectl("delete", "pod", victim, "-n", ns)
    wait_until("a replacement for the deleted pod", lambda: one_ready_pod_on(cluster, ns, "od", nodes), 30)
    images = {node: ps[0].spec.containers[0].image for node, ps in pods_by_node(cluster, ns, "od").items()}
    assert images == {"ds-0": "nginx:1.26", "ds-1": "nginx:1.25"}


def test_failed_daemon_pods_are_replaced_after_a_growing_back_off(cluster, ns):
    """As upstream's e2e "should retry creating failed daemon pods": a daemon pod its node fails (the status a
    kubelet rejecting it writes) is deleted and replaced; when the replacement fails right away too, the
    deletion waits out the per-node back-off, 1 s then 2 s then 4 s, so the controller and a node agent do not
    fight in a hot loop. Succeeded pods go at once."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=daemonset("flaky"))
    nodes = all_nodes(cluster)
    wait_until("a ready pod on every node", lambda: one_ready_pod_on(cluster, ns, "flaky", nodes), 30)

    def gone(name: str) -> bool:
        try:
            return cluster.core.read_namespaced_pod(name, ns).metadata.deletion_timestamp is not None
        except ApiException as e:
            return e.status == 404
    failed_at, deleted_at = [], []
    for _ in range(4):
        [pod] = wait_until("a running pod on ds-0", lambda: [p for p in pods_by_node(cluster, ns, "flaky").get(
            "ds-0", []) if p.status.phase == "Running"], 30, 0.05)
        cluster.core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {"phase": "Failed"}})
        failed_at.append(time.monotonic())
        wait_until(f"failed pod {pod.metadata.name} deleted", lambda: gone(pod.metadata.name), 30, 0.05)
        deleted_at.append(time.monotonic())
    gaps = [round(b - a, 2) for a, b in zip(deleted_at, deleted_at[1:])]
    # Deletions are seen by polling a loaded API server: one seen 0.2 s later than the next (a full suite at load
    # 20: 0.79 s for the 1 s back-off) shortens that gap. A hot loop would show gaps near 0, not 1, 2, 4 s.
    observed_late = 0.3
    assert all(gap >= want - observed_late for gap, want in zip(gaps, (1, 2, 4))) and gaps == sorted(gaps), gaps
    # the last one waited in back-off: it stayed Failed for a while after the failure, not just until its
    # replacement happened to be running
    assert deleted_at[3] - failed_at[3] >= 4.0 - (failed_at[3] - deleted_at[2]) - 0.2, (failed_at, deleted_at)
    events = [e for e in cluster.core.list_namespaced_event(ns).items if e.reason == "FailedDaemonPod"]
    assert len(events) >= 1 and sum(e.count or 1 for e in events) == 4, [(e.message, e.count) for e in events]
    assert events[0].type == "Warning" and events[0].message.startswith(f"Found failed daemon pod {ns}/flaky-")
    assert events[0].message.endswith(" on node ds-0, will try to kill it")
    wait_until("a ready pod on every node again", lambda: one_ready_pod_on(cluster, ns, "flaky", nodes), 30)

    [pod] = pods_by_node(cluster, ns, "flaky")["ds-1"]
    cluster.core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {"phase": "Succeeded"}})
    wait_until("the succeeded pod deleted", lambda: gone(pod.metadata.name), 10, 0.05)
    [event] = wait_until("the SucceededDaemonPod event", lambda: [
        e for e in cluster.core.list_namespaced_event(ns).items if e.reason == "SucceededDaemonPod"], 10)
    assert event.type == "Normal" and event.message == \
        f"Found succeeded daemon pod {ns}/{pod.metadata.name} on node ds-1, will try to delete it"


def test_daemonset_validation_and_explain(cluster, ns):
    bad = json.loads(daemonset("bad", rolling={"maxSurge": 1, "maxUnavailable": 1}))
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert out.returncode != 0
    assert "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is " \
           "non-zero" in out.stderr
    typo = json.loads(daemonset("typo"))
    typo["spec"]["updateStrateg"] = {}
    out = cluster.kubectl("apply", "-n", ns, "--validate=strict", "-f", "-", input=json.dumps(typo), check=False)
    assert 'unknown field "spec.updateStrateg"' in out.stderr and "failed to check CRD" not in out.stderr
    explained = cluster.kubectl("explain", "daemonset.spec.updateStrategy.rollingUpdate").stdout
    assert "maxSurge" in explained and "maxUnavailable" in explained
