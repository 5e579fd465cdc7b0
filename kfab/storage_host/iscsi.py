"""iSCSI provisioner: per claim a sparse backing file of the requested size (rounded up to a MiB, at least
8 MiB), one tgt target with it as LUN 1, the CHAP user of the configuration, an ACL of the node addresses.

PersistentVolume it describes (the binder-style completion adds name, class, claimRef, reclaim policy):
    spec:
      capacity: {storage: <the LUN's size, e.g. 1Gi, 954Mi for 1G>}
      accessModes: [ReadWriteOnce]                     # or ReadWriteOncePod; others are refused
      iscsi:
        targetPortal: <config portal>                  # host:3260
        iqn: <iqn_base>:pvc-<claim uid>
        lun: 1
        fsType: ext4
        readOnly: false
        chapAuthDiscovery: false                       # tgt discovery is limited by the ACL instead
        chapAuthSession: true
        secretRef: {name: kfab-iscsi-chap, namespace: <the claim's namespace>}
The Secret (type kubernetes.io/iscsi-chap, keys node.session.auth.username/password) is put in the claim's
namespace, as Kubernetes' iscsi volume wants the CHAP secret next to the pods that use it.
Delete removes the target, its config file and the backing file; Retain keeps all three.
Expansion grows the file and re-reads it into the LUN (only while no node is logged in).
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from kfab.storage_host.access import ISCSI_MODES, ProvisioningError, check_access_modes
from kfab.storage_host.config import ProvisionerConfig
from kfab.storage_host.naming import LUN, lun_file, target_iqn
from kfab.storage_host.sizes import SizeError, format_bytes, lun_bytes, request_bytes
from kfab.storage_host.tgt import Tgt
from kfab.objects.meta import spec_of

CHAP_SECRET_TYPE = "kubernetes.io/iscsi-chap"


class ISCSIProvisioner:
    access_modes = ISCSI_MODES
    can_expand = True

    def __init__(self, config: ProvisionerConfig, tgt: Tgt | None = None):
        self.config = config
        self.tgt = tgt or Tgt(config.conf_dir)

    def chap_secret(self, namespace: str) -> dict:
        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()
        return {"apiVersion": "v1", "kind": "Secret", "type": CHAP_SECRET_TYPE,
                "metadata": {"name": self.config.secret_name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "kfab-provisioner"}},
                "data": {"node.session.auth.username": b64(self.config.chap_user),
                         "node.session.auth.password": b64(self.config.chap_password)}}

    async def provision(self, claim: dict, storage_class: dict, pv_name: str) -> dict:
        modes = check_access_modes(claim, self.access_modes, self.config.provisioner)
        if spec_of(claim).get("volumeMode") == "Block":
            raise ProvisioningError(f"{self.config.provisioner} serves volumeMode Filesystem only")
        try:
            size = lun_bytes(request_bytes(claim))
        except SizeError as e:
            raise ProvisioningError(str(e)) from None
        iqn, path = target_iqn(self.config.iqn_base, pv_name), lun_file(self.config.lun_dir, pv_name)
        await asyncio.to_thread(self._make, pv_name, iqn, path, size)
        return {"metadata": {}, "spec": {
            "accessModes": modes,
            "capacity": {"storage": format_bytes(size)},
            "iscsi": {"targetPortal": self.config.portal, "iqn": iqn, "lun": LUN, "fsType": self.config.fs_type,
                      "readOnly": False, "chapAuthDiscovery": False, "chapAuthSession": True,
                      "secretRef": {"name": self.config.secret_name,
                                    "namespace": claim["metadata"]["namespace"]}}}}

    def _make(self, pv_name: str, iqn: str, path: str, size: int) -> None:
        _grow_file(path, size)
        self.tgt.ensure_target(pv_name, iqn, path, self.config.chap_user, self.config.chap_password,
                               self.config.initiators)

    def _ours(self, pv: dict) -> tuple[str, str, str]:
        name = pv["metadata"]["name"]
        source = spec_of(pv).get("iscsi") or {}
        iqn = target_iqn(self.config.iqn_base, name)
        if source.get("iqn") != iqn:
            raise ProvisioningError(f"volume {name}: iqn {source.get('iqn')!r} is not this provisioner's {iqn}")
        return name, iqn, lun_file(self.config.lun_dir, name)

    async def delete(self, pv: dict) -> None:
        name, iqn, path = self._ours(pv)
        await asyncio.to_thread(self.tgt.delete_target, name, iqn)
        await asyncio.to_thread(Path(path).unlink, missing_ok=True)

    async def expand(self, pv: dict, size: int) -> str:
        """Grow the LUN to at least `size` bytes; returns the new capacity."""
        _, iqn, path = self._ours(pv)
        size = lun_bytes(size)

        def grow() -> None:
            grew = _grow_file(path, size)
            target = self.tgt.targets().get(iqn)
            # tgt shows sizes in rounded MB: a LUN more than 1 MB short was not re-read since the file grew.
            if grew or target is None or target.luns.get(LUN, 0) < size - 1_000_000:
                self.tgt.reload_lun(iqn, path)
        await asyncio.to_thread(grow)
        return format_bytes(size)


def _grow_file(path: str, size: int) -> bool:
    """A sparse file of at least `size` bytes (never shrunk); True when it grew."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size >= size:
            return False
        os.ftruncate(fd, size)
        return True
    finally:
        os.close(fd)
