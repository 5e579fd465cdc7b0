"""`kfab provisioner nfs` against a real kfab server (whose PV binder hands claims over), with its own narrow
identity: claims of its class become Bound to a directory it made, Delete removes the directory, Retain keeps
it. Its root is a directory on this machine (the NFS server itself is tests/lab/test_storage_servers.py).
Also: static PersistentVolumes with nfs: and iscsi: sources, written as Kubernetes' docs write them."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest
import yaml

from tests.api.conftest import REPO, run_kubectl, user_kubeconfig
from tests.waiting import wait_until

SUFFIX = secrets.token_hex(3)
PROVISIONER = f"kfab.io/nfs-test-{SUFFIX}"   # not kfab.io/nfs: other tests' classes must not reach this one
CLASS = f"nfs-test-{SUFFIX}"


@pytest.fixture(scope="module")
def provisioner(kfab_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("provisioner")
    root = work / "dynamic"
    root.mkdir()
    config = work / "nfs.yml"
    config.write_text(yaml.safe_dump({"provisioner": PROVISIONER, "storage_class": CLASS, "server": "10.0.0.5",
                                      "root": str(root), "export_path": "/exports/dynamic",
                                      "mount_options": ["nfsvers=4.1"]}))
    kubeconfig = user_kubeconfig(kfab_server.data_dir, work, "system:kfab-provisioner:test", "system:kfab-provisioners")
    log = open(work / "provisioner.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kfab", "provisioner", "nfs", "--kubeconfig", str(kubeconfig),
                             "--config", str(config), "-v"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield {"root": root, "kubeconfig": kubeconfig, "log": work / "provisioner.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def get(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def claim(name, cls=CLASS, modes=("ReadWriteMany",)):
    return json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                       "spec": {"storageClassName": cls, "accessModes": list(modes),
                                "resources": {"requests": {"storage": "2Gi"}}}})


def bound(kubectl, namespace, name):
    def check():
        pvc = get(kubectl, "-n", namespace, "pvc", name)
        return pvc if pvc.get("status", {}).get("phase") == "Bound" else None
    return wait_until(f"claim {name} Bound", check)


def test_it_makes_its_storage_class(kubectl, provisioner):
    sc = wait_until("the StorageClass", lambda: kubectl("get", "sc", CLASS, "-o", "json", check=False).stdout)
    sc = json.loads(sc)
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["allowVolumeExpansion"], sc["mountOptions"]) == (
        PROVISIONER, "Delete", False, ["nfsvers=4.1"])
    assert "storageclass.kubernetes.io/is-default-class" not in sc["metadata"].get("annotations", {})


def test_claim_bound_to_a_new_directory_removed_with_the_claim(kubectl, namespace, provisioner):
    wait_until("the StorageClass", lambda: kubectl("get", "sc", CLASS, check=False).returncode == 0)
    kubectl("apply", "-n", namespace, "-f", "-", input=claim("shared"))
    pvc = bound(kubectl, namespace, "shared")
    pv = get(kubectl, "pv", pvc["spec"]["volumeName"])
    name = pv["metadata"]["name"]
    assert name == f"pvc-{pvc['metadata']['uid']}"
    directory = f"{namespace}-shared-{name}"
    assert pv["spec"]["nfs"] == {"server": "10.0.0.5", "path": f"/exports/dynamic/{directory}"}
    assert (pv["spec"]["accessModes"], pv["spec"]["capacity"], pv["spec"]["mountOptions"]) == (
        ["ReadWriteMany"], {"storage": "2Gi"}, ["nfsvers=4.1"])
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == PROVISIONER
    path = provisioner["root"] / directory
    assert path.is_dir() and oct(path.stat().st_mode & 0o777) == "0o777"
    events = get(kubectl, "-n", namespace, "events")["items"]
    assert any(e["reason"] == "ProvisioningSucceeded" and name in e["message"] for e in events)
    (path / "data").write_text("x")
    kubectl("delete", "-n", namespace, "pvc", "shared")
    wait_until("the volume deleted", lambda: kubectl("get", "pv", name, check=False).returncode != 0)
    assert not path.exists()


def test_retain_keeps_directory_and_released_volume(kubectl, namespace, provisioner):
    cls = f"{CLASS}-retain"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                                  "metadata": {"name": cls}, "provisioner": PROVISIONER,
                                                  "reclaimPolicy": "Retain"}))
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=claim("keep", cls, ["ReadWriteOnce"]))
        name = bound(kubectl, namespace, "keep")["spec"]["volumeName"]
        kubectl("delete", "-n", namespace, "pvc", "keep")
        wait_until("the volume Released", lambda: get(kubectl, "pv", name)["status"].get("phase") == "Released")
        assert (provisioner["root"] / f"{namespace}-keep-{name}").is_dir()
        kubectl("delete", "pv", name)
    finally:
        kubectl("delete", "sc", cls, "--ignore-not-found")


def test_its_identity_reaches_volumes_not_workloads(kfab_server, provisioner):
    kc = provisioner["kubeconfig"]
    assert run_kubectl(kc, "get", "pv").returncode == 0
    assert run_kubectl(kc, "auth", "can-i", "create", "persistentvolumes").stdout.strip() == "yes"
    denied = run_kubectl(kc, "get", "pods", "-A")
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    assert run_kubectl(kc, "auth", "can-i", "delete", "nodes").stdout.strip() == "no"


def test_bad_settings_stop_it_naming_the_file_and_key(tmp_path):
    config = tmp_path / "iscsi.yml"
    config.write_text("portal: 10.0.0.5:3260\niqn_base: iqn.2024-01.io.kfab\nlun_dir: /srv/l\n"
                      "initiators: [10.0.0.11]\nchap_user: kfab\n")
    proc = subprocess.run([sys.executable, "-m", "kfab", "provisioner", "iscsi", "--kubeconfig", "/nonexistent",
                           "--config", str(config)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert f"kfab provisioner: {config}: chap_password: required" in proc.stderr


STATIC = """\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {nfs}
spec:
  capacity:
    storage: 5Gi
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  mountOptions: [hard, nfsvers=4.1]
  nfs:
    server: 10.0.0.5
    path: /srv/kfab-nfs/static/share
    readOnly: false
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {iscsi}
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  iscsi:
    targetPortal: 10.0.0.5:3260
    portals: ['10.0.0.6:3260']
    iqn: iqn.2024-01.io.kfab:static1
    lun: 1
    fsType: ext4
    readOnly: false
    chapAuthDiscovery: false
    chapAuthSession: true
    secretRef:
      name: chap-secret
      namespace: {namespace}
"""


def test_static_nfs_and_iscsi_volumes_are_kept_as_written_and_bind(kubectl, namespace):
    nfs, iscsi = f"static-nfs-{SUFFIX}", f"static-iscsi-{SUFFIX}"
    kubectl("apply", "-f", "-", input=STATIC.format(nfs=nfs, iscsi=iscsi, namespace=namespace))
    try:
        assert get(kubectl, "pv", nfs)["spec"]["nfs"] == {"server": "10.0.0.5", "path": "/srv/kfab-nfs/static/share",
                                                         "readOnly": False}
        assert get(kubectl, "pv", iscsi)["spec"]["iscsi"] == {
            "targetPortal": "10.0.0.5:3260", "portals": ["10.0.0.6:3260"], "iqn": "iqn.2024-01.io.kfab:static1",
            "lun": 1, "fsType": "ext4", "readOnly": False, "chapAuthDiscovery": False, "chapAuthSession": True,
            "secretRef": {"name": "chap-secret", "namespace": namespace}}
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "db"},
            "spec": {"storageClassName": "", "volumeName": iscsi, "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}))
        assert bound(kubectl, namespace, "db")["spec"]["volumeName"] == iscsi
    finally:
        kubectl("delete", "-n", namespace, "pvc", "db", "--ignore-not-found")
        kubectl("delete", "pv", nfs, iscsi, "--ignore-not-found")
