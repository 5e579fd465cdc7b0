"""What DELETE answers, kind by kind, as kube-apiserver answers it and the official client decodes it: the object
for kinds whose registry returns it (PVC, PV, Pod, Namespace, ...), a Status for the others, and the marked
object (deletionTimestamp) whenever finalizers or a graceful shutdown keep it."""

from __future__ import annotations

import uuid

from kubernetes import client

from tests.api.test_core_crud import bind, pod, wait_gone

HELD = ["example.com/hold"]


def claim(name: str, finalizers: list[str] | None = None) -> dict:
    # A class no volume and no provisioner has: the PV binder leaves the claim Pending.
    return {"metadata": {"name": name, "finalizers": finalizers or []},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "tests-no-such-class",
                     "resources": {"requests": {"storage": "1Gi"}}}}


def volume(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "tests-other-class", "hostPath": {"path": f"/tmp/{name}"}}}


def test_pvc_delete_answers_the_claim_gone_or_held(k8s, namespace):
    core = client.CoreV1Api(k8s)
    made = core.create_namespaced_persistent_volume_claim(namespace, claim("gone"))
    gone = core.delete_namespaced_persistent_volume_claim("gone", namespace)
    assert isinstance(gone, client.V1PersistentVolumeClaim)
    assert (gone.metadata.name, gone.metadata.uid) == ("gone", made.metadata.uid)

    core.create_namespaced_persistent_volume_claim(namespace, claim("held", HELD))
    held, code, _ = core.delete_namespaced_persistent_volume_claim_with_http_info("held", namespace)
    assert code == 200  # not 202: kube-apiserver keeps 200 unless orphanDependents=false was sent
    assert held.metadata.deletion_timestamp is not None and held.metadata.finalizers == HELD
    core.patch_namespaced_persistent_volume_claim("held", namespace, {"metadata": {"finalizers": None}})
    wait_gone(lambda: core.read_namespaced_persistent_volume_claim("held", namespace))


def test_pv_delete_answers_the_volume(k8s):
    core = client.CoreV1Api(k8s)
    name = f"pv-{uuid.uuid4().hex[:6]}"
    core.create_persistent_volume(volume(name))
    gone = core.delete_persistent_volume(name)
    assert isinstance(gone, client.V1PersistentVolume) and gone.metadata.name == name
    assert gone.spec.storage_class_name == "tests-other-class"
    wait_gone(lambda: core.read_persistent_volume(name))


def test_pod_delete_answers_the_pod_gone_or_shutting_down(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod("unbound"))
    gone = core.delete_namespaced_pod("unbound", namespace)
    assert isinstance(gone, client.V1Pod) and gone.metadata.name == "unbound"
    core.create_namespaced_pod(namespace, pod("bound"))
    bind(k8s, namespace, "bound", "node-a")
    stopping = core.delete_namespaced_pod("bound", namespace)
    assert stopping.metadata.deletion_timestamp is not None and stopping.metadata.deletion_grace_period_seconds == 30
    final = core.delete_namespaced_pod("bound", namespace, grace_period_seconds=0)
    assert isinstance(final, client.V1Pod) and final.metadata.name == "bound"


def test_namespace_delete_answers_the_namespace_terminating(k8s):
    core = client.CoreV1Api(k8s)
    name = f"t-del-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    # The client's generated type for this call is "object" (Kubernetes' document says Status; the server sends
    # the Namespace): a dict.
    answer = core.delete_namespace(name)
    assert answer["kind"] == "Namespace" and answer["metadata"]["name"] == name
    assert answer["status"]["phase"] == "Terminating" and answer["metadata"]["deletionTimestamp"]
    wait_gone(lambda: core.read_namespace(name))


def test_configmap_delete_answers_a_status_with_details(k8s, namespace):
    core = client.CoreV1Api(k8s)
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "plain"}})
    status = core.delete_namespaced_config_map("plain", namespace)
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "plain", "kind": "configmaps", "uid": made.metadata.uid}}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "kept", "finalizers": HELD}})
    kept, code, _ = core.delete_namespaced_config_map_with_http_info("kept", namespace, orphan_dependents=False)
    assert code == 202 and kept["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("kept", namespace, {"metadata": {"finalizers": None}})
