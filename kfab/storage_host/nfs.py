"""NFS provisioner: one subdirectory of the dynamic export root per claim (the server exports the root).

PersistentVolume it describes (the binder-style completion adds name, class, claimRef, reclaim policy):
    spec:
      capacity: {storage: <the claim's request, as written>}   # NFS has no size limit to enforce
      accessModes: <the claim's>                                # RWO, ROX, RWX, RWOP
      mountOptions: <the class's>
      nfs: {server: <config server>, path: <export_path>/<namespace>-<claim>-pvc-<uid>}
Delete removes the directory and everything in it; Retain leaves it. Nothing to grow on expansion.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from kfab.storage_host.access import NFS_MODES, ProvisioningError, check_access_modes
from kfab.storage_host.config import ProvisionerConfig
from kfab.storage_host.naming import nfs_directory
from kfab.objects.meta import spec_of


class NFSProvisioner:
    access_modes = NFS_MODES
    can_expand = False

    def __init__(self, config: ProvisionerConfig):
        self.config = config
        self.root = Path(config.root)

    def directory_of(self, pv: dict) -> Path:
        """The local directory behind a volume this provisioner made; refuses any path outside the root."""
        path = str(((spec_of(pv).get("nfs")) or {}).get("path") or "")
        export = self.config.export_path.rstrip("/") + "/"
        name = path[len(export):] if path.startswith(export) else ""
        if not name or "/" in name or name in (".", "..") or not name.endswith(pv["metadata"]["name"]):
            raise ProvisioningError(f"volume {pv['metadata']['name']}: nfs path {path!r} is not one of this "
                                    f"provisioner's directories under {export}")
        return self.root / name

    async def provision(self, claim: dict, storage_class: dict, pv_name: str) -> dict:
        modes = check_access_modes(claim, self.access_modes, self.config.provisioner)
        name = nfs_directory(claim, pv_name)
        await asyncio.to_thread(self._make_directory, self.root / name)
        return {"metadata": {}, "spec": {
            "accessModes": modes,
            "nfs": {"server": self.config.server, "path": f"{self.config.export_path.rstrip('/')}/{name}"}}}

    @staticmethod
    def _make_directory(path: Path) -> None:
        path.mkdir(exist_ok=True)
        # Pods run as any user: the directory is theirs to write (nfs-subdir-external-provisioner does the same).
        os.chmod(path, 0o777)

    async def delete(self, pv: dict) -> None:
        path = self.directory_of(pv)
        if path.exists():
            await asyncio.to_thread(shutil.rmtree, path)

    async def expand(self, pv: dict, size: int) -> str:
        raise ProvisioningError("NFS volumes have no size to grow")
