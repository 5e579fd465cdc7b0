"""Deployments and ReplicaSets through the API: kubectl and the official client against `kfab server` running
its controllers in-process, with hollow nodes "running" the pods."""

from __future__ import annotations

import datetime
import json
import queue
import secrets
import threading

import pytest
from kubernetes import watch

from tests.api.controllers_cluster import UNSCHEDULABLE, running_cluster
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("kfab-controllers"))


@pytest.fixture
def ns(cluster):
    name = f"c-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core.delete_namespace(name)


def deployment(name: str, replicas: int = 3, image: str = "nginx:1.25", ready_after: int = 0,
               strategy: dict | None = None, node_selector: dict | None = None, **spec) -> dict:
    container = {"name": "web", "image": image}
    if ready_after:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": ready_after}
    pod_spec = {"containers": [container], **({"nodeSelector": node_selector} if node_selector else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": strategy or {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}, **spec}}


def active_pods(cluster, ns: str, app: str) -> list:
    return [p for p in cluster.core.list_namespaced_pod(ns, label_selector=f"app={app}").items
            if p.metadata.deletion_timestamp is None]


def running_ready(pods) -> int:
    return sum(1 for p in pods if p.status.phase == "Running"
               and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))


def wait_rolled_out(cluster, ns: str, name: str, timeout: float = 60) -> None:
    cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", ns, f"--timeout={int(timeout)}s",
                    timeout=timeout + 10)


def test_deployment_scales_up_and_down(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_rolled_out(cluster, ns, "web")
    originals = active_pods(cluster, ns, "web")
    assert running_ready(originals) == 2
    # Timestamps have one-second resolution: let the clock pass the originals' so "newest" is well defined.
    latest = max(c.last_transition_time for p in originals for c in p.status.conditions)
    wait_until("the next second",
               lambda: datetime.datetime.now(datetime.timezone.utc) > latest + datetime.timedelta(seconds=1), 5)

    cluster.kubectl("scale", "deployment/web", "--replicas=5", "-n", ns)
    wait_until("5 running pods", lambda: running_ready(active_pods(cluster, ns, "web")) == 5, 30)

    cluster.kubectl("scale", "deployment/web", "--replicas=2", "-n", ns)
    wait_until("scale down to 2", lambda: len(active_pods(cluster, ns, "web")) == 2, 30)
    survivors = {p.metadata.name for p in active_pods(cluster, ns, "web")}
    assert survivors == {p.metadata.name for p in originals}  # newest pods go first
    wait_rolled_out(cluster, ns, "web")
    rs = cluster.apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and rs[0].spec.replicas == 2 and rs[0].status.ready_replicas == 2
    owner = rs[0].metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Deployment", "web", True)
    assert rs[0].metadata.labels["pod-template-hash"] and rs[0].metadata.name.startswith("web-")


def test_replicaset_replaces_a_deleted_pod(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("heal", replicas=3))
    wait_rolled_out(cluster, ns, "heal")
    victim = active_pods(cluster, ns, "heal")[0].metadata.name
    cluster.kubectl("delete", "pod", victim, "-n", ns)
    wait_until("a replacement pod Running",
               lambda: (lambda pods: len(pods) == 3 and running_ready(pods) == 3
                        and victim not in {p.metadata.name for p in pods})(active_pods(cluster, ns, "heal")), 30)
    reasons = cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(reasons)["items"]}
    assert {"SuccessfulCreate", "ScalingReplicaSet"} <= reasons


class PodWatcher:
    """Follows the pods of one app from the watch stream; records (active, ready) after every event."""

    def __init__(self, cluster, ns: str, app: str):
        self.core, self.ns, self.app = cluster.core, ns, app
        self.pods: dict[str, object] = {}
        self.samples: list[tuple[int, int, frozenset]] = []
        self._watch = watch.Watch()
        self._events: queue.Queue = queue.Queue()
        listed = self.core.list_namespaced_pod(ns, label_selector=f"app={app}")
        self.pods = {p.metadata.name: p for p in listed.items}
        rv = listed.metadata.resource_version
        self._thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self._thread.start()

    def _run(self, rv: str) -> None:
        try:
            self._follow(rv)
        except Exception:  # noqa: BLE001 - stop() closes the stream under the reader
            pass

    def _follow(self, rv: str) -> None:
        for event in self._watch.stream(self.core.list_namespaced_pod, self.ns, label_selector=f"app={self.app}",
                                        resource_version=rv, timeout_seconds=120):
            pod = event["object"]
            if event["type"] == "DELETED":
                self.pods.pop(pod.metadata.name, None)
            else:
                self.pods[pod.metadata.name] = pod
            active = [p for p in self.pods.values() if p.metadata.deletion_timestamp is None]
            self.samples.append((len(active), running_ready(active),
                                 frozenset(p.metadata.labels.get("pod-template-hash") for p in active)))

    def stop(self) -> None:
        self._watch.stop()


def test_rolling_update_never_drops_below_min_available(cluster, ns):
    replicas, max_unavailable, max_surge = 6, 1, 2
    cluster.apps.create_namespaced_deployment(ns, deployment(
        "roll", replicas=replicas, ready_after=1,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable,
                                                              "maxSurge": max_surge}}))
    wait_rolled_out(cluster, ns, "roll")
    watcher = PodWatcher(cluster, ns, "roll")
    try:
        cluster.kubectl("set", "image", "deployment/roll", "web=nginx:1.26", "-n", ns)
        wait_rolled_out(cluster, ns, "roll")
        wait_until("the watch to see the finished rollout",
                   lambda: watcher.samples and watcher.samples[-1][0] == replicas
                   and len(watcher.samples[-1][2]) == 1, 30)
    finally:
        watcher.stop()
    hashes = set().union(*(s[2] for s in watcher.samples))
    assert len(hashes) == 2, "the stream shows old and new pods"
    assert min(ready for _, ready, _ in watcher.samples) >= replicas - max_unavailable
    assert max(active for active, _, _ in watcher.samples) <= replicas + max_surge
    assert all(p.spec.containers[0].image == "nginx:1.26" for p in active_pods(cluster, ns, "roll"))


def test_rollback_to_an_earlier_revision_with_kubectl_rollout_undo(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("app", replicas=2))
    wait_rolled_out(cluster, ns, "app")
    for image in ("nginx:1.26", "nginx:1.27"):
        cluster.kubectl("set", "image", "deployment/app", f"web={image}", "-n", ns)
        wait_rolled_out(cluster, ns, "app")
    history = cluster.kubectl("rollout", "history", "deployment/app", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]
    rev1 = cluster.kubectl("rollout", "history", "deployment/app", "-n", ns, "--revision=1").stdout
    assert "nginx:1.25" in rev1

    cluster.kubectl("rollout", "undo", "deployment/app", "-n", ns, "--to-revision=1")
    wait_rolled_out(cluster, ns, "app")
    dep = cluster.apps.read_namespaced_deployment("app", ns)
    assert dep.spec.template.spec.containers[0].image == "nginx:1.25"
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "4"
    assert {p.spec.containers[0].image for p in active_pods(cluster, ns, "app")} == {"nginx:1.25"}
    # The revision-1 ReplicaSet came back as revision 4: no new ReplicaSet for an old template.
    sets = cluster.apps.list_namespaced_replica_set(ns).items
    assert len(sets) == 3
    back = next(rs for rs in sets if rs.spec.template.spec.containers[0].image == "nginx:1.25")
    assert back.metadata.annotations["deployment.kubernetes.io/revision"] == "4" and back.spec.replicas == 2

    cluster.kubectl("rollout", "undo", "deployment/app", "-n", ns)  # back to the previous one (1.27)
    wait_rolled_out(cluster, ns, "app")
    assert cluster.apps.read_namespaced_deployment("app", ns).spec.template.spec.containers[0].image == "nginx:1.27"


def test_rollout_restart_pause_and_resume(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("pr", replicas=2))
    wait_rolled_out(cluster, ns, "pr")
    cluster.kubectl("rollout", "restart", "deployment/pr", "-n", ns)
    wait_rolled_out(cluster, ns, "pr")
    assert len(cluster.apps.list_namespaced_replica_set(ns).items) == 2

    cluster.kubectl("rollout", "pause", "deployment/pr", "-n", ns)
    cluster.kubectl("set", "image", "deployment/pr", "web=nginx:1.26", "-n", ns)
    wait_until("the Progressing condition to say paused",
               lambda: any(c.reason == "DeploymentPaused" for c in
                           cluster.apps.read_namespaced_deployment("pr", ns).status.conditions or []), 20)
    assert len(cluster.apps.list_namespaced_replica_set(ns).items) == 2  # paused: no new ReplicaSet
    cluster.kubectl("rollout", "resume", "deployment/pr", "-n", ns)
    wait_rolled_out(cluster, ns, "pr")
    assert {p.spec.containers[0].image for p in active_pods(cluster, ns, "pr")} == {"nginx:1.26"}


def test_recreate_stops_all_old_pods_before_starting_new_ones(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("rec", replicas=3, strategy={"type": "Recreate"}))
    wait_rolled_out(cluster, ns, "rec")
    watcher = PodWatcher(cluster, ns, "rec")
    try:
        cluster.kubectl("set", "image", "deployment/rec", "web=nginx:1.26", "-n", ns)
        wait_rolled_out(cluster, ns, "rec")
        wait_until("the watch to see the new pods",
                   lambda: watcher.samples and watcher.samples[-1][0] == 3 and len(watcher.samples[-1][2]) == 1
                   and watcher.samples[-1][1] == 3, 30)
    finally:
        watcher.stop()
    assert all(len(hashes) <= 1 for _, _, hashes in watcher.samples), "old and new pods never side by side"
    assert len(set().union(*(s[2] for s in watcher.samples))) == 2


def test_progress_deadline_exceeded_fails_rollout_status(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("stuck", replicas=1, progressDeadlineSeconds=2,
                                                             node_selector=UNSCHEDULABLE))
    wait_until("ProgressDeadlineExceeded",
               lambda: any(c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded" and c.status == "False"
                           for c in cluster.apps.read_namespaced_deployment("stuck", ns).status.conditions or []), 30)
    result = cluster.kubectl("rollout", "status", "deployment/stuck", "-n", ns, "--timeout=10s", check=False)
    assert result.returncode != 0 and "exceeded its progress deadline" in result.stderr


def test_replicaset_adopts_matching_orphan_pods(cluster, ns):
    # The orphan runs before the ReplicaSet exists (as upstream's e2e test does it): the controller's pod watch
    # and its ReplicaSet watch are two streams, and right after other tests' namespace deletions the pod stream
    # may lag; a ReplicaSet seen before its orphan creates two pods, adopts the orphan a moment later and then
    # deletes the surplus (the newest, never the long-running orphan), so only the settled state is checked.
    cluster.core.create_namespaced_pod(ns, {"metadata": {"name": "stray", "labels": {"tier": "cache"}},
                                            "spec": {"containers": [{"name": "c", "image": "redis"}]}})
    wait_until("the orphan running", lambda: cluster.core.read_namespaced_pod("stray", ns).status.phase == "Running",
               30)
    cluster.apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "cache"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"tier": "cache"}},
                 "template": {"metadata": {"labels": {"tier": "cache"}},
                              "spec": {"containers": [{"name": "c", "image": "redis"}]}}}})

    def settled():
        ready = cluster.apps.read_namespaced_replica_set("cache", ns).status.ready_replicas or 0
        pods = cluster.core.list_namespaced_pod(ns).items
        return ready == 2 and len(pods) == 2 and pods
    pods = wait_until("2 ready replicas and no third pod", settled, 30)
    owners = {p.metadata.name: [r.name for r in p.metadata.owner_references or []] for p in pods}
    assert owners["stray"] == ["cache"] and all(o == ["cache"] for o in owners.values()), owners


def test_min_ready_seconds_delays_availability(cluster, ns):
    cluster.apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "patient"},
        "spec": {"replicas": 2, "minReadySeconds": 5, "selector": {"matchLabels": {"app": "patient"}},
                 "template": {"metadata": {"labels": {"app": "patient"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    read = lambda: cluster.apps.read_namespaced_replica_set("patient", ns).status  # noqa: E731
    status = wait_until("2 ready", lambda: (lambda s: s if (s.ready_replicas or 0) == 2 else None)(read()), 30)
    assert not status.available_replicas  # ready, but not for 5 seconds yet
    wait_until("2 available after minReadySeconds", lambda: (read().available_replicas or 0) == 2, 30)


def test_scaling_mid_rollout_is_proportional(cluster, ns):
    """The docs' example: 10 replicas, maxSurge 3, maxUnavailable 2, a new template whose pods never get
    ready; scaling to 15 adds 3 replicas to the old ReplicaSet and 2 to the new one."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    cluster.apps.create_namespaced_deployment(ns, deployment("prop", replicas=10, strategy=strategy))
    wait_rolled_out(cluster, ns, "prop")
    old_name = cluster.apps.list_namespaced_replica_set(ns).items[0].metadata.name
    cluster.apps.patch_namespaced_deployment("prop", ns, deployment("prop", replicas=10, image="nginx:1.26",
                                                                    ready_after=600, strategy=strategy))

    def sizes():
        sets = cluster.apps.list_namespaced_replica_set(ns).items
        old = next(rs.spec.replicas for rs in sets if rs.metadata.name == old_name)
        new = [rs.spec.replicas for rs in sets if rs.metadata.name != old_name]
        return old, (new[0] if new else None)
    wait_until("the rollout to stall at old 8 / new 5", lambda: sizes() == (8, 5), 30, 0.2)
    cluster.kubectl("scale", "deployment/prop", "--replicas=15", "-n", ns)
    wait_until("old 11 / new 7", lambda: sizes() == (11, 7), 30, 0.2)


def test_revision_history_limit_removes_the_oldest_replicasets(cluster, ns):
    cluster.apps.create_namespaced_deployment(ns, deployment("hist", replicas=1, revisionHistoryLimit=1))
    wait_rolled_out(cluster, ns, "hist")
    for image in ("nginx:1.26", "nginx:1.27", "nginx:1.28"):
        cluster.kubectl("set", "image", "deployment/hist", f"web={image}", "-n", ns)
        wait_rolled_out(cluster, ns, "hist")
    wait_until("two ReplicaSets left", lambda: len(cluster.apps.list_namespaced_replica_set(ns).items) == 2, 30)
    revisions = sorted(int(rs.metadata.annotations["deployment.kubernetes.io/revision"])
                       for rs in cluster.apps.list_namespaced_replica_set(ns).items)
    assert revisions == [3, 4]
