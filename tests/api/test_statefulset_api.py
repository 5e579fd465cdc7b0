"""StatefulSets through the API: ordered start/stop asserted from the watched pod event stream, sticky PVCs,
stable hostnames, rolling update with a partition, Parallel pod management, ordered deletion."""

from __future__ import annotations

import secrets
import threading

import pytest
from kubernetes import client, watch

from tests.api.hollow_cluster import hollow_cluster, pod_ready
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-sts"), {"sts-": 3})


@pytest.fixture
def ns(cluster):
    name = f"st-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    # The claims of volumeClaimTemplates must be bound before their pods are scheduled (kube-scheduler's volume
    # binding); hollow nodes have no provisioner: volumes for this namespace's claims, gone with them. Six: the
    # most one test claims (par and ord, 3 each); with fewer, whether it passed hung on volumes other tests left.
    for i in range(6):
        cluster.core.create_persistent_volume({"metadata": {"name": f"{name}-{i}"}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": f"/tmp/{name}-{i}"}}})
    yield name
    cluster.core.delete_namespace(name)


class PodStream:
    """Every pod watch event of a namespace, in order: (type, name, ready, terminating, revision)."""

    def __init__(self, core, ns: str):
        self.events: list[tuple] = []
        self._stopped = False
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, ns), daemon=True)
        self._thread.start()

    def _run(self, core, ns: str) -> None:
        try:
            for ev in self._watch.stream(core.list_namespaced_pod, ns, timeout_seconds=300):
                p = ev["object"]
                self.events.append((ev["type"], p.metadata.name, pod_ready(p),
                                    p.metadata.deletion_timestamp is not None,
                                    (p.metadata.labels or {}).get("controller-revision-hash")))
        except Exception:  # noqa: BLE001 - the stream is cut when the test stops it; a short stream fails asserts
            if not self._stopped:
                raise

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()

    def first(self, predicate) -> int:
        return next((i for i, e in enumerate(self.events) if predicate(e)), -1)

    def added(self, name: str) -> int:
        return self.first(lambda e: e[0] == "ADDED" and e[1] == name)

    def ready(self, name: str) -> int:
        return self.first(lambda e: e[1] == name and e[2])

    def leaving(self, name: str, after: int = 0) -> int:
        """First event at or after `after` where the pod is terminating or gone."""
        return next((i for i, e in enumerate(self.events)
                     if i >= after and e[1] == name and (e[3] or e[0] == "DELETED")), -1)

    def deleted(self, name: str, after: int = 0) -> int:
        return next((i for i, e in enumerate(self.events) if i >= after and e[1] == name and e[0] == "DELETED"), -1)


def statefulset(name: str = "web", replicas: int = 3, image: str = "nginx:1.25", policy: str = "OrderedReady",
                partition: int | None = None) -> dict:
    strategy = {"type": "RollingUpdate"}
    if partition is not None:
        strategy["rollingUpdate"] = {"partition": partition}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": "nginx", "replicas": replicas, "podManagementPolicy": policy,
                     "updateStrategy": strategy, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                         "name": "nginx", "image": image, "ports": [{"name": "web", "containerPort": 80}],
                         "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 1}}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def ready_pods(cluster, ns: str, app: str = "web") -> dict:
    return {p.metadata.name: p for p in cluster.core.list_namespaced_pod(ns, label_selector=f"app={app}").items
            if pod_ready(p) and not p.metadata.deletion_timestamp}


def wait_ready(cluster, ns: str, names: list[str], app: str = "web", timeout: float = 60) -> dict:
    def all_ready():
        pods = ready_pods(cluster, ns, app)
        return pods if sorted(pods) == sorted(names) else None
    return wait_until(f"exactly {names} Running and Ready", all_ready, timeout)


def claim_uids(cluster, ns: str) -> dict:
    return {c.metadata.name: c.metadata.uid for c in cluster.core.list_namespaced_persistent_volume_claim(ns).items}


def test_ordered_ready_start_scale_down_and_sticky_claims(cluster, ns):
    stream = PodStream(cluster.core, ns)
    try:
        cluster.apps.create_namespaced_stateful_set(ns, statefulset())
        pods = wait_ready(cluster, ns, ["web-0", "web-1", "web-2"])
        # Each ordinal is created only once the previous one was Running and Ready.
        for prev, nxt in (("web-0", "web-1"), ("web-1", "web-2")):
            assert 0 <= stream.ready(prev) < stream.added(nxt), stream.events
        for i in range(3):
            spec = pods[f"web-{i}"].spec
            assert (spec.hostname, spec.subdomain) == (f"web-{i}", "nginx")
            assert pods[f"web-{i}"].metadata.labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
            assert [v.persistent_volume_claim.claim_name for v in spec.volumes
                    if v.persistent_volume_claim] == [f"www-web-{i}"]
        claims = claim_uids(cluster, ns)
        assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
        sts = cluster.apps.read_namespaced_stateful_set("web", ns)
        assert (sts.status.replicas, sts.status.ready_replicas, sts.status.updated_replicas) == (3, 3, 3)
        assert sts.status.current_revision == sts.status.update_revision == pods["web-0"].metadata.labels[
            "controller-revision-hash"]

        # A deleted pod comes back with the same name and the same claim.
        old_uid = pods["web-1"].metadata.uid
        cluster.core.delete_namespaced_pod("web-1", ns)
        back = wait_until("web-1 to come back",
                          lambda: (lambda p: p if p.get("web-1") and p["web-1"].metadata.uid != old_uid else None)(
              ready_pods(cluster, ns)), 60)
        assert [v.persistent_volume_claim.claim_name for v in back["web-1"].spec.volumes
                if v.persistent_volume_claim] == ["www-web-1"]

        # Scale down: highest ordinal first, one at a time; the claims stay.
        mark = len(stream.events)
        cluster.kubectl("scale", "statefulset", "web", "--replicas=1", "-n", ns)
        wait_ready(cluster, ns, ["web-0"])
        wait_until("web-1 gone", lambda: stream.deleted("web-1", mark) >= 0, 30)
        assert 0 <= stream.deleted("web-2", mark) < stream.leaving("web-1", mark), stream.events[mark:]
        assert claim_uids(cluster, ns) == claims

        # Scale up again: the same claims are mounted again, none is created.
        cluster.kubectl("scale", "statefulset", "web", "--replicas=3", "-n", ns)
        wait_ready(cluster, ns, ["web-0", "web-1", "web-2"])
        assert claim_uids(cluster, ns) == claims
    finally:
        stream.stop()


def test_rolling_update_with_partition_goes_from_the_highest_ordinal_down(cluster, ns):
    cluster.apps.create_namespaced_stateful_set(ns, statefulset(partition=2))
    wait_ready(cluster, ns, ["web-0", "web-1", "web-2"])
    old = cluster.apps.read_namespaced_stateful_set("web", ns).status.current_revision
    stream = PodStream(cluster.core, ns)
    try:
        cluster.kubectl("set", "image", "statefulset/web", "nginx=nginx:1.26", "-n", ns)

        def partitioned():
            s = cluster.apps.read_namespaced_stateful_set("web", ns).status
            pods = ready_pods(cluster, ns)
            return s if (s.updated_replicas == 1 and len(pods) == 3
                         and pods["web-2"].spec.containers[0].image == "nginx:1.26") else None
        status = wait_until("only web-2 updated", partitioned, 60)
        assert status.current_revision == old != status.update_revision
        pods = ready_pods(cluster, ns)
        assert [pods[f"web-{i}"].spec.containers[0].image for i in range(3)] == ["nginx:1.25", "nginx:1.25",
                                                                                 "nginx:1.26"]
        mark = len(stream.events)
        cluster.apps.patch_namespaced_stateful_set("web", ns, {"spec": {"updateStrategy": {
            "rollingUpdate": {"partition": 0}}}})
        cluster.kubectl("rollout", "status", "statefulset/web", "-n", ns, "--timeout=90s", timeout=100)
        pods = wait_ready(cluster, ns, ["web-0", "web-1", "web-2"])
        assert {p.spec.containers[0].image for p in pods.values()} == {"nginx:1.26"}
        # web-1 was replaced (and Ready again) before web-0 was touched.
        assert 0 <= stream.leaving("web-1", mark) < stream.leaving("web-0", mark), stream.events[mark:]
        new_web1 = next(i for i, e in enumerate(stream.events) if i > stream.leaving("web-1", mark)
                        and e[1] == "web-1" and e[2])
        assert new_web1 < stream.leaving("web-0", mark)
        s = cluster.apps.read_namespaced_stateful_set("web", ns).status
        assert s.current_revision == s.update_revision != old
        history = cluster.kubectl("rollout", "history", "statefulset/web", "-n", ns).stdout
        assert "1 " in history and "2 " in history
    finally:
        stream.stop()


def test_parallel_creates_without_waiting_and_delete_goes_in_reverse_order(cluster, ns):
    stream = PodStream(cluster.core, ns)
    try:
        cluster.apps.create_namespaced_stateful_set(ns, statefulset("par", policy="Parallel"))
        wait_ready(cluster, ns, ["par-0", "par-1", "par-2"], app="par")
        # The watch may deliver the Ready updates a moment after the read saw them (flaky under load).
        wait_until("Ready events on the watch", lambda: all(stream.ready(f"par-{i}") >= 0 for i in range(3)), 30)
        first_ready = min(stream.ready(f"par-{i}") for i in range(3))
        assert max(stream.added(f"par-{i}") for i in range(3)) < first_ready, stream.events

        cluster.apps.create_namespaced_stateful_set(ns, statefulset("ord"))
        wait_ready(cluster, ns, ["ord-0", "ord-1", "ord-2"], app="ord")
        mark = len(stream.events)
        cluster.kubectl("delete", "statefulset", "ord", "-n", ns, "--timeout=60s", timeout=70)
        wait_until("ord pods gone",
                   lambda: not cluster.core.list_namespaced_pod(ns, label_selector="app=ord").items, 30)
        order = [stream.leaving(f"ord-{i}", mark) for i in (2, 1, 0)]
        assert all(i >= 0 for i in order) and order == sorted(order), stream.events[mark:]
        # Each went only after the higher one was gone.
        assert stream.deleted("ord-2", mark) < stream.leaving("ord-1", mark)
        assert stream.deleted("ord-1", mark) < stream.leaving("ord-0", mark)
        assert sorted(c for c in claim_uids(cluster, ns) if c.endswith(tuple("012")) and "-ord-" in c) == [
            "www-ord-0", "www-ord-1", "www-ord-2"]   # claims outlive the set
    finally:
        stream.stop()


def test_events_tell_the_story(cluster, ns):
    cluster.apps.create_namespaced_stateful_set(ns, statefulset("ev", replicas=1))
    wait_ready(cluster, ns, ["ev-0"], app="ev")
    events = wait_until("SuccessfulCreate events",
                        lambda: (lambda out: out if "create Pod ev-0 in StatefulSet ev successful" in out else None)(
          cluster.kubectl("get", "events", "-n", ns).stdout), 20)
    assert "create Claim www-ev-0 Pod ev-0 in StatefulSet ev success" in events


def test_statefulset_status_via_official_client_types(cluster, ns):
    cluster.apps.create_namespaced_stateful_set(ns, statefulset("st", replicas=2))
    wait_ready(cluster, ns, ["st-0", "st-1"], app="st")
    s = wait_until("readyReplicas 2",
                   lambda: (lambda s: s if s.status.ready_replicas == 2 else None)(
          cluster.apps.read_namespaced_stateful_set("st", ns)), 20)
    assert isinstance(s, client.V1StatefulSet) and s.status.observed_generation == s.metadata.generation
    revisions = client.AppsV1Api(cluster.api).list_namespaced_controller_revision(ns).items
    assert [r.metadata.name for r in revisions if r.metadata.owner_references[0].name == "st"] == [
        s.status.update_revision]


def test_failed_pod_is_replaced_with_the_same_identity(cluster, ns):
    cluster.apps.create_namespaced_stateful_set(ns, statefulset("fl", replicas=2))
    pods = wait_ready(cluster, ns, ["fl-0", "fl-1"], app="fl")
    old_uid = pods["fl-0"].metadata.uid
    cluster.core.patch_namespaced_pod_status("fl-0", ns, {"status": {"phase": "Failed"}})
    back = wait_until("fl-0 recreated after failing",
                      lambda: (lambda p: p if p.get("fl-0") and p["fl-0"].metadata.uid != old_uid else None)(
          ready_pods(cluster, ns, "fl")), 60)
    assert back["fl-0"].spec.hostname == "fl-0"
    events = cluster.kubectl("get", "events", "-n", ns).stdout
    assert "delete Pod fl-0 in StatefulSet fl successful" in events


def test_min_ready_seconds_holds_the_next_ordinal(cluster, ns):
    body = statefulset("mr", replicas=2)
    body["spec"]["minReadySeconds"] = 3
    stream = PodStream(cluster.core, ns)
    try:
        cluster.apps.create_namespaced_stateful_set(ns, body)
        wait_ready(cluster, ns, ["mr-0", "mr-1"], app="mr")
        ready0 = stream.ready("mr-0")
        assert 0 <= ready0 < stream.added("mr-1")
        pods = {p.metadata.name: p for p in cluster.core.list_namespaced_pod(ns, label_selector="app=mr").items}
        ready_since = next(c.last_transition_time for c in pods["mr-0"].status.conditions if c.type == "Ready")
        # mr-1 was created only once mr-0 had been Ready for minReadySeconds (timestamps have 1 s resolution).
        assert (pods["mr-1"].metadata.creation_timestamp - ready_since).total_seconds() >= 3 - 1
        s = wait_until("availableReplicas 2",
                       lambda: (lambda s: s if s.status.available_replicas == 2 else None)(
              cluster.apps.read_namespaced_stateful_set("mr", ns)), 30)
        assert s.status.ready_replicas == 2
    finally:
        stream.stop()
