"""The NFS provisioner on a real directory, the iSCSI provisioner's PV shape and CHAP Secret, and the
StorageClasses the provisioners make; a volume whose source points outside the provisioner's own storage is
never deleted."""

from __future__ import annotations

import asyncio
import base64

import pytest

from kfab.storage_host.access import ProvisioningError
from kfab.storage_host.config import parse_config
from kfab.storage_host.controller import DEFAULT_CLASS, storage_class_for
from kfab.storage_host.iscsi import ISCSIProvisioner
from kfab.storage_host.nfs import NFSProvisioner

PV = "pvc-0e5d380a-a4cc-4218-ae6f-20f38d777340"
CLAIM = {"metadata": {"name": "data", "namespace": "shop", "uid": PV[4:]},
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}}


def nfs(tmp_path):
    return NFSProvisioner(parse_config("nfs", {"server": "10.0.0.5", "root": str(tmp_path),
                                               "export_path": "/exports/dyn"}))


def test_nfs_volume_is_a_directory_named_after_the_claim(tmp_path):
    pv = asyncio.run(nfs(tmp_path).provision(CLAIM, {}, PV))
    assert pv["spec"] == {"accessModes": ["ReadWriteMany"],
                          "nfs": {"server": "10.0.0.5", "path": f"/exports/dyn/shop-data-{PV}"}}
    directory = tmp_path / f"shop-data-{PV}"
    assert directory.is_dir()
    (directory / "kept").write_text("x")
    asyncio.run(nfs(tmp_path).provision(CLAIM, {}, PV))   # again: the same directory, data kept
    assert (directory / "kept").exists()
    asyncio.run(nfs(tmp_path).delete({"metadata": {"name": PV}, "spec": pv["spec"]}))
    assert not directory.exists()


@pytest.mark.parametrize("path", ["/exports/dyn/..", "/exports/dyn/../etc", "/exports/dyn/a/b", "/etc",
                                  "/exports/dyn/shop-data-other", "/exports/dyn"])
def test_nfs_never_deletes_outside_its_directories(tmp_path, path):
    with pytest.raises(ProvisioningError, match="is not one of this provisioner's directories"):
        asyncio.run(nfs(tmp_path).delete({"metadata": {"name": PV}, "spec": {"nfs": {"path": path}}}))


def iscsi():
    return ISCSIProvisioner(parse_config("iscsi", {
        "portal": "10.0.0.5:3260", "iqn_base": "iqn.2024-01.io.kfab", "lun_dir": "/srv/l",
        "initiators": ["10.0.0.11"], "chap_user": "kfab", "chap_password": "twelve-chars"}))


def test_iscsi_chap_secret_is_the_kubernetes_iscsi_chap_type():
    secret = iscsi().chap_secret("shop")
    assert (secret["type"], secret["metadata"]["namespace"], secret["metadata"]["name"]) == (
        "kubernetes.io/iscsi-chap", "shop", "kfab-iscsi-chap")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "node.session.auth.username": "kfab", "node.session.auth.password": "twelve-chars"}


def test_iscsi_refuses_before_making_anything():
    claim = dict(CLAIM, spec=dict(CLAIM["spec"], accessModes=["ReadWriteOnce"], volumeMode="Block"))
    with pytest.raises(ProvisioningError, match="serves volumeMode Filesystem only"):
        asyncio.run(iscsi().provision(claim, {}, PV))
    with pytest.raises(ProvisioningError, match="does not support access mode ReadWriteMany"):
        asyncio.run(iscsi().provision(CLAIM, {}, PV))


def test_iscsi_never_deletes_another_target():
    pv = {"metadata": {"name": PV}, "spec": {"iscsi": {"iqn": "iqn.2024-01.io.kfab:static1"}}}
    with pytest.raises(ProvisioningError, match="is not this provisioner's"):
        asyncio.run(iscsi().delete(pv))


def test_storage_classes_the_provisioners_make():
    cfg = parse_config("nfs", {"server": "s", "root": "/r", "default_class": True, "mount_options": ["hard"]})
    sc = storage_class_for(cfg, can_expand=False)
    assert (sc["metadata"]["name"], sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"],
            sc["allowVolumeExpansion"], sc["mountOptions"], sc["metadata"]["annotations"]) == (
        "kfab-nfs", "kfab.io/nfs", "Delete", "Immediate", False, ["hard"], {DEFAULT_CLASS: "true"})
    sc = storage_class_for(iscsi().config, can_expand=True)
    assert (sc["metadata"]["name"], sc["allowVolumeExpansion"], "annotations" in sc["metadata"]) == (
        "kfab-iscsi", True, False)
