"""PersistentVolume binding through the API: claims get the smallest fitting volume (capacity, access modes,
class, selector), pre-bound volumes go to their claim, a class with an unregistered provisioner waits with
Kubernetes' event, deleting a claim releases (Retain) or deletes (Delete) its volume; and a registered
provisioner hook creates a volume for a claim."""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.api.conftest import start_server, stop_server
from tests.waiting import wait_until


@pytest.fixture
def core(k8s):
    return client.CoreV1Api(k8s)


@pytest.fixture
def tag():
    return secrets.token_hex(3)


def pv(name: str, size: str, modes: list[str], policy: str = "Retain", sc: str = "", labels: dict | None = None,
       claim_ref: dict | None = None) -> dict:
    spec = {"capacity": {"storage": size}, "accessModes": modes, "persistentVolumeReclaimPolicy": policy,
            "storageClassName": sc, "hostPath": {"path": f"/tmp/{name}"}}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def pvc(name: str, size: str, modes: list[str], sc: str | None = "", selector: dict | None = None) -> dict:
    spec = {"accessModes": modes, "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if selector:
        spec["selector"] = selector
    return {"metadata": {"name": name}, "spec": spec}


def bound_to(core, ns: str, claim: str) -> str | None:
    c = core.read_namespaced_persistent_volume_claim(claim, ns)
    return c.spec.volume_name if c.status.phase == "Bound" else None


def test_claims_bind_to_the_smallest_volume_that_fits(core, namespace, tag):
    ns = namespace
    core.create_persistent_volume(pv(f"small-{tag}", "1Gi", ["ReadWriteOnce"]))
    core.create_persistent_volume(pv(f"mid-{tag}", "5Gi", ["ReadWriteOnce", "ReadOnlyMany"]))
    core.create_persistent_volume(pv(f"big-{tag}", "20Gi", ["ReadWriteOnce", "ReadOnlyMany"]))
    core.create_persistent_volume(pv(f"labelled-{tag}", "50Gi", ["ReadWriteOnce"], labels={"disk": f"ssd-{tag}"}))
    core.create_namespaced_persistent_volume_claim(ns, pvc("a", "500Mi", ["ReadWriteOnce"]))
    assert wait_until("a bound", lambda: bound_to(core, ns, "a"), 20) == f"small-{tag}"
    core.create_namespaced_persistent_volume_claim(ns, pvc("b", "2Gi", ["ReadOnlyMany"]))
    assert wait_until("b bound", lambda: bound_to(core, ns, "b"), 20) == f"mid-{tag}"
    core.create_namespaced_persistent_volume_claim(ns, pvc("c", "1Gi", ["ReadWriteOnce"],
                                                           selector={"matchLabels": {"disk": f"ssd-{tag}"}}))
    assert wait_until("c bound", lambda: bound_to(core, ns, "c"), 20) == f"labelled-{tag}"

    volume = core.read_persistent_volume(f"small-{tag}")
    assert volume.status.phase == "Bound"
    assert (volume.spec.claim_ref.namespace, volume.spec.claim_ref.name) == (ns, "a")
    claim = core.read_namespaced_persistent_volume_claim("a", ns)
    assert volume.spec.claim_ref.uid == claim.metadata.uid
    assert claim.status.capacity == {"storage": "1Gi"} and claim.status.access_modes == ["ReadWriteOnce"]

    # Nothing left that fits 30Gi RWX: the claim stays Pending.
    core.create_namespaced_persistent_volume_claim(ns, pvc("d", "30Gi", ["ReadWriteMany"]))
    wait_until("d Pending", lambda: core.read_namespaced_persistent_volume_claim("d", ns).status.phase == "Pending", 20)
    # A volume that fits appears: the waiting claim takes it.
    core.create_persistent_volume(pv(f"rwx-{tag}", "40Gi", ["ReadWriteMany"]))
    assert wait_until("d bound", lambda: bound_to(core, ns, "d"), 20) == f"rwx-{tag}"


def test_pre_bound_volume_goes_to_its_claim_only(core, namespace, tag):
    ns = namespace
    core.create_persistent_volume(pv(f"reserved-{tag}", "1Gi", ["ReadWriteOnce"],
                                     claim_ref={"namespace": ns, "name": "mine"}))
    core.create_namespaced_persistent_volume_claim(ns, pvc("other", "1Gi", ["ReadWriteOnce"]))
    core.create_namespaced_persistent_volume_claim(ns, pvc("mine", "1Gi", ["ReadWriteOnce"]))
    assert wait_until("mine bound", lambda: bound_to(core, ns, "mine"), 20) == f"reserved-{tag}"
    # "other" may take any free volume other tests left, never the reserved one.
    assert core.read_namespaced_persistent_volume_claim("other", ns).spec.volume_name != f"reserved-{tag}"
    assert core.read_persistent_volume(f"reserved-{tag}").spec.claim_ref.name == "mine"


def test_deleting_a_claim_releases_or_deletes_its_volume(core, kubectl, namespace, tag):
    ns = namespace
    core.create_persistent_volume(pv(f"keep-{tag}", "1Gi", ["ReadWriteOnce"], policy="Retain", sc=f"k-{tag}"))
    core.create_persistent_volume(pv(f"drop-{tag}", "1Gi", ["ReadWriteOnce"], policy="Delete", sc=f"d-{tag}"))
    core.create_namespaced_persistent_volume_claim(ns, pvc("keep", "1Gi", ["ReadWriteOnce"], sc=f"k-{tag}"))
    core.create_namespaced_persistent_volume_claim(ns, pvc("drop", "1Gi", ["ReadWriteOnce"], sc=f"d-{tag}"))
    wait_until("both bound", lambda: bound_to(core, ns, "keep") and bound_to(core, ns, "drop"), 20)
    kubectl("delete", "pvc", "keep", "drop", "-n", ns)
    wait_until("keep Released", lambda: core.read_persistent_volume(f"keep-{tag}").status.phase == "Released", 20)
    assert "Released" in kubectl("get", "pv", f"keep-{tag}").stdout

    def gone():
        try:
            core.read_persistent_volume(f"drop-{tag}")
        except client.ApiException as e:
            return e.status == 404
        return False
    wait_until("the Delete-policy volume deleted", gone, 20)


def test_unregistered_provisioner_leaves_the_claim_pending_with_kubernetes_event(core, kubectl, k8s, namespace, tag):
    ns = namespace
    client.StorageV1Api(k8s).create_storage_class({"metadata": {"name": f"nfs-{tag}"},
                                                   "provisioner": "example.com/nfs"})
    core.create_namespaced_persistent_volume_claim(ns, pvc("dyn", "1Gi", ["ReadWriteMany"], sc=f"nfs-{tag}"))
    message = ('waiting for a volume to be created, either by external provisioner "example.com/nfs" or manually '
               'created by system administrator')
    wait_until("the ExternalProvisioning event",
               lambda: message in kubectl("describe", "pvc", "dyn", "-n", ns).stdout, 20)
    claim = core.read_namespaced_persistent_volume_claim("dyn", ns)
    assert claim.status.phase == "Pending"
    assert claim.metadata.annotations["volume.kubernetes.io/storage-provisioner"] == "example.com/nfs"


# --- a registered provisioner: the binder runs in this process against a server without controllers -----

class DirectoryProvisioner:
    """Provisions a directory per claim (a hostPath volume) - the shape the NFS provisioner will have."""

    def __init__(self, root: Path):
        self.root = root

    async def provision(self, claim: dict, storage_class: dict, pv_name: str) -> dict:
        path = self.root / pv_name
        path.mkdir(parents=True)
        return {"metadata": {"name": pv_name}, "spec": {"hostPath": {"path": str(path)}}}

    async def delete(self, pv: dict) -> None:
        Path(pv["spec"]["hostPath"]["path"]).rmdir()


@pytest.fixture
def own_binder(tmp_path):
    from kfab.client import Client
    from kfab.machinery.controller import ControllerContext
    from kfab.machinery.events import EventRecorder
    from kfab.machinery.informer import InformerFactory
    from kfab.controllers.provisioners import ProvisionerRegistry
    from kfab.controllers.pv_binder import PersistentVolumeBinder

    data = tmp_path / "server"
    data.mkdir()
    proc, server = start_server(data, "--disable-controllers")
    registry = ProvisionerRegistry()
    registry.register("kfab.io/test-dir", DirectoryProvisioner(tmp_path / "volumes"))
    loop = asyncio.new_event_loop()
    stopped = threading.Event()

    async def run():
        async with Client.from_kubeconfig(server.kubeconfig) as c:
            informers = InformerFactory(c)
            recorder = EventRecorder(c, "test")
            binder = PersistentVolumeBinder(ControllerContext(c, informers, recorder, {"provisioners": registry}))
            informers.start()
            task = asyncio.ensure_future(binder.run())
            while not stopped.is_set():
                await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await informers.stop()
            await recorder.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        yield api, tmp_path / "volumes"
    finally:
        stopped.set()
        thread.join(timeout=15)
        api.close()
        stop_server(proc)


def test_registered_provisioner_creates_binds_and_deletes_a_volume(own_binder):
    api, root = own_binder
    core = client.CoreV1Api(api)
    client.StorageV1Api(api).create_storage_class({"metadata": {"name": "dir"}, "provisioner": "kfab.io/test-dir",
                                                   "reclaimPolicy": "Delete"})
    core.create_namespaced_persistent_volume_claim("default", pvc("data", "2Gi", ["ReadWriteOnce"], sc="dir"))
    name = wait_until("the claim bound to a provisioned volume", lambda: bound_to(core, "default", "data"), 30)
    claim = core.read_namespaced_persistent_volume_claim("data", "default")
    assert name == f"pvc-{claim.metadata.uid}"
    volume = core.read_persistent_volume(name)
    assert volume.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "kfab.io/test-dir"
    assert (volume.spec.storage_class_name, volume.spec.capacity, volume.spec.persistent_volume_reclaim_policy) == (
        "dir", {"storage": "2Gi"}, "Delete")
    assert (root / name).is_dir()
    core.delete_namespaced_persistent_volume_claim("data", "default")
    wait_until("the provisioned directory removed", lambda: not (root / name).exists(), 30)
    wait_until("the provisioned volume deleted",
               lambda: not [v for v in core.list_persistent_volume().items if v.metadata.name == name], 30)
