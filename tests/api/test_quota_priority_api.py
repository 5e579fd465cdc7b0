"""ResourceQuota, LimitRange, PriorityClass with preemption, and the scheduler's volume binding, through
real kubectl and the official client against a `kfab server` with hollow nodes (8 CPUs each)."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client

from tests.api.conftest import exists
from tests.api.hollow_cluster import hollow_cluster, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from hollow_cluster(tmp_path_factory.mktemp("kfab-quota"), {"prio-": 2})


@pytest.fixture
def ns(cluster):
    name = f"q-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    wait_for(lambda: exists(lambda: cluster.core.read_namespaced_service_account("default", name)), 10,
             "the default ServiceAccount")
    yield name
    cluster.core.delete_namespace(name)


def pod(name: str, cpu: str | None = None, limits: dict | None = None, **spec) -> dict:
    container = {"name": "c", "image": "busybox"}
    resources = {}
    if cpu:
        resources["requests"] = {"cpu": cpu}
    if limits:
        resources["limits"] = limits
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def kubectl_fails(cluster, *args, input=None) -> str:
    result = cluster.kubectl(*args, input=input, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip()


def quota_used(cluster, ns: str, name: str) -> dict:
    status = cluster.core.read_namespaced_resource_quota(name, ns).status
    return (status.used if status else None) or {}


# --- ResourceQuota -------------------------------------------------------------------------------------

def test_quota_refuses_the_pod_that_would_exceed_it_and_gives_room_back(cluster, ns):
    cluster.kubectl("create", "quota", "pod-count", "--hard=pods=2,count/configmaps=3", "-n", ns)
    wait_for(lambda: quota_used(cluster, ns, "pod-count").get("pods") == "0", 15, "the quota's status")
    for name in ("p1", "p2"):
        cluster.kubectl("run", name, "--image=busybox", "-n", ns)
    assert quota_used(cluster, ns, "pod-count")["pods"] == "2"   # charged by admission at once
    error = kubectl_fails(cluster, "run", "p3", "--image=busybox", "-n", ns)
    assert error == ('Error from server (Forbidden): pods "p3" is forbidden: exceeded quota: pod-count, '
                     "requested: pods=1, used: pods=2, limited: pods=2")
    table = cluster.kubectl("get", "quota", "-n", ns).stdout
    assert "count/configmaps: 1/3, pods: 2/2" in table   # kube-root-ca.crt is one ConfigMap already
    cluster.kubectl("delete", "pod", "p1", "-n", ns, "--grace-period=0", "--force")
    wait_for(lambda: quota_used(cluster, ns, "pod-count")["pods"] == "1", 15, "the quota to give a pod back")
    cluster.kubectl("run", "p3", "--image=busybox", "-n", ns)


def test_compute_quota_needs_limits_and_counts_them(cluster, ns):
    cluster.core.create_namespaced_resource_quota(ns, {"metadata": {"name": "compute"}, "spec": {
        "hard": {"requests.cpu": "1", "limits.cpu": "2", "limits.memory": "1Gi"}}})
    wait_for(lambda: quota_used(cluster, ns, "compute").get("limits.cpu") == "0", 15, "the quota's status")
    error = kubectl_fails(cluster, "run", "bare", "--image=busybox", "-n", ns)
    assert error == ('Error from server (Forbidden): pods "bare" is forbidden: failed quota: compute: must specify '
                     "limits.cpu for: bare; limits.memory for: bare; requests.cpu for: bare")
    cluster.core.create_namespaced_pod(ns, pod("small", limits={"cpu": "600m", "memory": "256Mi"}))
    used = quota_used(cluster, ns, "compute")
    assert (used["requests.cpu"], used["limits.cpu"], used["limits.memory"]) == ("600m", "600m", "256Mi")
    with pytest.raises(client.ApiException) as caught:
        cluster.core.create_namespaced_pod(ns, pod("second", limits={"cpu": "600m", "memory": "256Mi"}))
    assert caught.value.status == 403
    assert ('exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: '
            'requests.cpu=1') in caught.value.body


def test_an_update_is_charged_for_what_it_adds(cluster, ns):
    cluster.kubectl("create", "quota", "ports", "--hard=services.nodeports=0,services=5", "-n", ns)
    wait_for(lambda: quota_used(cluster, ns, "ports").get("services") == "0", 15, "the quota's status")
    cluster.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
    error = kubectl_fails(cluster, "patch", "service", "web", "-n", ns, "-p", '{"spec":{"type":"NodePort"}}')
    assert error == ('Error from server (Forbidden): services "web" is forbidden: exceeded quota: ports, '
                     "requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0")
    cluster.kubectl("label", "service", "web", "tier=front", "-n", ns)   # what adds nothing passes
    assert quota_used(cluster, ns, "ports")["services"] == "1"


# --- LimitRange ----------------------------------------------------------------------------------------

LIMIT_RANGE = """
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 200m}
    max: {cpu: "1"}
  - type: PersistentVolumeClaim
    max: {storage: 2Gi}
"""


def test_limit_range_defaults_containers_and_refuses_what_exceeds_it(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=LIMIT_RANGE)
    stored = cluster.core.read_namespaced_limit_range("defaults", ns).spec.limits[0]
    assert stored.default_request == {"cpu": "200m", "memory": "256Mi"}   # defaulted from default, as kube
    cluster.kubectl("run", "plain", "--image=busybox", "-n", ns)
    made = cluster.core.read_namespaced_pod("plain", ns)
    resources = made.spec.containers[0].resources
    assert resources.limits == {"cpu": "500m", "memory": "256Mi"}
    assert resources.requests == {"cpu": "200m", "memory": "256Mi"}
    assert made.metadata.annotations["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container plain; cpu, memory limit for container plain")
    assert made.status.qos_class == "Burstable"
    error = kubectl_fails(cluster, "run", "greedy", "--image=busybox", "-n", ns, "--overrides",
                          '{"spec":{"containers":[{"name":"greedy","image":"busybox",'
                          '"resources":{"limits":{"cpu":"2"}}}]}}')
    assert error == ('Error from server (Forbidden): pods "greedy" is forbidden: maximum cpu usage per Container '
                     "is 1, but limit is 2")
    claim = ("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: big}\n"
             "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 5Gi}}}\n")
    error = kubectl_fails(cluster, "create", "-n", ns, "-f", "-", input=claim)
    assert 'persistentvolumeclaims "big" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, ' \
           "but request is 5Gi" in error
    assert cluster.kubectl("get", "limits", "-n", ns).stdout.split()[:3] == ["NAME", "CREATED", "AT"]


# --- PriorityClass and preemption ----------------------------------------------------------------------

def test_priority_admission_sets_priority_and_refuses_unknown_classes(cluster, ns):
    table = cluster.kubectl("get", "priorityclasses").stdout
    assert "system-node-critical      2000001000   false" in table
    assert "system-cluster-critical   2000000000   false" in table
    cluster.core.create_namespaced_pod(ns, pod("critical", priorityClassName="system-cluster-critical"))
    assert cluster.core.read_namespaced_pod("critical", ns).spec.priority == 2000000000
    error = kubectl_fails(cluster, "run", "nope", "--image=busybox", "-n", ns, "--overrides",
                          '{"spec":{"priorityClassName":"no-such-class"}}')
    assert error == ('Error from server (Forbidden): pods "nope" is forbidden: no PriorityClass with name '
                     "no-such-class was found")
    error = kubectl_fails(cluster, "create", "priorityclass", "too-high", "--value=2000000000")
    assert "maximum allowed value of a user defined priority is 1000000000" in error


def test_preemption_evicts_the_lower_priority_pod_on_hollow_nodes(cluster, ns):
    names = [f"pc-{ns}-low", f"pc-{ns}-high"]
    cluster.kubectl("create", "priorityclass", names[0], "--value=10")
    cluster.kubectl("create", "priorityclass", names[1], "--value=1000", "--preemption-policy=PreemptLowerPriority")
    try:
        # Each hollow node has 8 CPUs: one 5-CPU low-priority pod per node leaves no room for another 5.
        for i in range(2):
            cluster.core.create_namespaced_pod(ns, pod(f"low-{i}", cpu="5", priorityClassName=names[0]))
        wait_for(lambda: all(cluster.core.read_namespaced_pod(f"low-{i}", ns).spec.node_name for i in range(2)),
                 30, "the low-priority pods to be bound")
        cluster.core.create_namespaced_pod(ns, pod("high", cpu="5", priorityClassName=names[1]))
        node = wait_for(lambda: cluster.core.read_namespaced_pod("high", ns).spec.node_name, 60,
                        "the high-priority pod to be bound after preempting")
        left = [p.metadata.name for p in cluster.core.list_namespaced_pod(ns).items if p.metadata.name != "high"]
        assert len(left) == 1 and cluster.core.read_namespaced_pod(left[0], ns).spec.node_name != node
        events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "reason=Preempted").stdout
        high_uid = cluster.core.read_namespaced_pod("high", ns).metadata.uid
        assert f"Preempted by pod {high_uid} on node {node}" in events
        # A pod of the same low priority cannot preempt anything: it waits, saying why.
        cluster.core.create_namespaced_pod(ns, pod("low-2", cpu="5", priorityClassName=names[0]))

        def unschedulable():
            p = cluster.core.read_namespaced_pod("low-2", ns)
            return next((c.message for c in p.status.conditions or [] if c.type == "PodScheduled"
                         and c.status == "False"), None)
        message = wait_for(unschedulable, 30, "low-2 to be Unschedulable")
        assert message == ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
                           "2 No preemption victims found for incoming pod.")
    finally:
        for name in names:
            cluster.kubectl("delete", "priorityclass", name, check=False)


# --- volume binding ------------------------------------------------------------------------------------

def test_pod_with_an_unbound_immediate_claim_stays_pending(cluster, ns):
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                                     "resources": {"requests": {"storage": "1Gi"}}}}
    cluster.core.create_namespaced_persistent_volume_claim(ns, claim)
    cluster.core.create_namespaced_pod(ns, pod("user", volumes=[{"name": "d", "persistentVolumeClaim": {
        "claimName": "data"}}]))

    def condition():
        p = cluster.core.read_namespaced_pod("user", ns)
        return next((c for c in p.status.conditions or [] if c.type == "PodScheduled" and c.status == "False"), None)
    cond = wait_for(condition, 30, "the pod to be Unschedulable")
    assert cond.message == ("0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    assert cluster.core.read_namespaced_pod("user", ns).spec.node_name is None


def test_wait_for_first_consumer_claim_is_bound_on_the_node_the_scheduler_picks(cluster, ns):
    storage = client.StorageV1Api(cluster.api)
    sc_name, pv_name = f"local-{ns}", f"pv-{ns}"
    storage.create_storage_class({"metadata": {"name": sc_name}, "provisioner": "kubernetes.io/no-provisioner",
                                  "volumeBindingMode": "WaitForFirstConsumer"})
    target = cluster.nodes[1]
    cluster.core.create_persistent_volume({"metadata": {"name": pv_name}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": sc_name,
        "hostPath": {"path": f"/tmp/{pv_name}"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [target]}]}]}}}})
    try:
        cluster.core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "local"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "storageClassName": sc_name,
            "resources": {"requests": {"storage": "1Gi"}}}})
        events = lambda: cluster.kubectl("get", "events", "-n", ns, "--field-selector",  # noqa: E731
                                         "reason=WaitForFirstConsumer").stdout
        wait_for(lambda: "waiting for first consumer to be created before binding" in events(), 15,
                 "the claim to wait for its first consumer")
        assert cluster.core.read_namespaced_persistent_volume_claim("local", ns).status.phase == "Pending"
        cluster.core.create_namespaced_pod(ns, pod("consumer", volumes=[{"name": "d", "persistentVolumeClaim": {
            "claimName": "local"}}]))
        node = wait_for(lambda: cluster.core.read_namespaced_pod("consumer", ns).spec.node_name, 30,
                        "the consumer to be bound")
        assert node == target   # the only node the volume allows
        claim = wait_for(lambda: (lambda c: c if c.status.phase == "Bound" else None)(
            cluster.core.read_namespaced_persistent_volume_claim("local", ns)), 30, "the claim to be bound")
        assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == target
        assert claim.spec.volume_name == pv_name
    finally:
        cluster.kubectl("delete", "pod", "consumer", "-n", ns, "--grace-period=0", "--force", check=False)
        cluster.kubectl("delete", "pv", pv_name, "--wait=false", check=False)
        storage.delete_storage_class(sc_name)
