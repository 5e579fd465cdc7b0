"""The node's network volumes: set up before a pod's containers start, torn down when no pod needs them.

NFS: one mount per pod on its volume directory. iSCSI: one login and one mount per node under
`<volumes root>/iscsi/<portal>-<iqn>-lun-<n>` (the kubelet's global mount), bound into each pod that uses it;
the pods' binds are the in-use count, read from the mount table, so it survives agent restarts. Each iSCSI
volume has a lock: a pod setting the volume up and a release tearing it down never interleave.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Awaitable, Callable

from kfab.node.storage import iscsi, mounts, nfs
from kfab.node.storage.attach import Attachments, MultiAttachError
from kfab.node.storage.iscsi import IscsiSourceError, IscsiTarget
from kfab.node.storage.mounts import CommandError

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, str], Awaitable[dict | None]]


class StorageError(Exception):
    """A network volume cannot be set up; reason is the event reason (FailedMount, FailedAttachVolume)."""

    def __init__(self, message: str, reason: str = "FailedMount"):
        super().__init__(message)
        self.reason = reason


class NodeStorage:
    def __init__(self, pods_root: Path, volumes_root: Path, lookup: Lookup, attachments: Attachments):
        self.pods_root, self.lookup, self.attachments = pods_root, lookup, attachments
        self.iscsi_root = volumes_root / "iscsi"
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self._releasing: set[Path] = set()  # pod directories being unmounted in the background

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # --- set up ------------------------------------------------------------------------------------

    async def mount_nfs(self, target: Path, source: dict, options: list[str] | None, read_only: bool,
                        volume: str) -> None:
        for key in ("server", "path"):
            if not source.get(key):
                raise StorageError(f'volume "{volume}": nfs.{key} is required')
        try:
            await nfs.mount_nfs(source, options, read_only, target)
        except CommandError as e:
            raise StorageError(f'MountVolume.SetUp failed for volume "{volume}" : {e}') from None

    async def mount_iscsi(self, target: Path, source: dict, namespace: str, read_only: bool, volume: str,
                          exclusive: bool) -> None:
        """Log in, mount node-wide, bind into the pod. `exclusive`: one node at a time (not ReadOnlyMany)."""
        try:
            t = IscsiTarget.from_source(source, namespace, read_only)
        except IscsiSourceError as e:
            raise StorageError(f'volume "{volume}": {e}') from None
        global_dir = self._dir(t)
        async with self._lock(t.unique_name):
            table = mounts.read_mounts()
            if mounts.mounted_at(global_dir, table) is None:
                await self._attach(t, global_dir, volume, exclusive)
                table = mounts.read_mounts()
            if mounts.mounted_at(target, table) is None:
                try:
                    await mounts.bind(global_dir, target, t.read_only)
                except CommandError as e:
                    raise StorageError(f'MountVolume.SetUp failed for volume "{volume}" : {e}') from None

    async def _attach(self, t: IscsiTarget, global_dir: Path, volume: str, exclusive: bool) -> None:
        if exclusive:
            try:
                await self.attachments.claim(t.unique_name, volume)
            except MultiAttachError as e:
                raise StorageError(str(e), "FailedAttachVolume") from None
        secret: dict[str, bytes] = {}
        if t.chap_discovery or t.chap_session:
            obj = await self.lookup("Secret", t.secret_namespace, t.secret_name)
            if obj is None:
                raise StorageError(f'MountVolume.SetUp failed for volume "{volume}" : CHAP secret '
                                   f'"{t.secret_namespace}/{t.secret_name}" not found')
            secret = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        global_dir.mkdir(parents=True, exist_ok=True)
        t.save(self._record(t))
        try:
            await iscsi.login(t, secret)
            device = await iscsi.wait_for_device(t)
            await iscsi.ensure_filesystem(t, device)
            cmd = ["mount", "-t", t.fs_type] + (["-o", "ro"] if t.read_only else []) + [str(device), str(global_dir)]
            await mounts.run(cmd)
        except (CommandError, IscsiSourceError) as e:
            # Leave nothing behind: no session, no claim that would keep the volume from another node.
            try:
                await self._release(t)
            except Exception as cleanup:  # noqa: BLE001 - the release on pod removal retries
                log.warning("cleaning up after a failed attach of %s: %s", t.unique_name, cleanup)
            raise StorageError(f'MountVolume.MountDevice failed for volume "{volume}" : {e}') from None
        await self._publish()

    def _dir(self, t: IscsiTarget) -> Path:
        return self.iscsi_root / t.mount_name

    def _record(self, t: IscsiTarget) -> Path:
        # Not with_suffix(): portals and IQNs are full of dots.
        return self.iscsi_root / f"{t.mount_name}.json"

    def _targets(self) -> list[IscsiTarget]:
        return [IscsiTarget.load(r) for r in sorted(self.iscsi_root.glob("*.json"))]

    # --- tear down ---------------------------------------------------------------------------------

    def release_pod(self, pod_dir: Path) -> bool:
        """Unmount a removed pod's volumes and delete its directory, in the background when something is
        mounted there (unmounting and logging out take seconds). False when that work was scheduled."""
        if pod_dir in self._releasing:
            return False
        table = mounts.read_mounts()
        if not mounts.mounts_under(pod_dir, table):
            mounts.remove_tree(pod_dir, {e.mount_point for e in table})
            return True
        self._releasing.add(pod_dir)
        task = asyncio.get_running_loop().create_task(self._release_pod(pod_dir))
        self._tasks.add(task)
        task.add_done_callback(lambda t: (self._tasks.discard(t), self._releasing.discard(pod_dir)))
        return False

    async def _release_pod(self, pod_dir: Path) -> None:
        try:
            for entry in mounts.mounts_under(pod_dir, mounts.read_mounts()):
                await mounts.unmount(Path(entry.mount_point))
            if not mounts.remove_tree(pod_dir):
                log.warning("%s: something is still mounted there; kept it", pod_dir)
            await self.release_unused()
        except Exception:  # noqa: BLE001 - the next orphan sweep retries
            log.exception("releasing the volumes of %s failed", pod_dir)

    async def release_unused(self) -> None:
        """Unmount and log out of every iSCSI volume no pod on this node binds any more."""
        if not self.iscsi_root.is_dir():
            return
        changed = False
        for t in self._targets():
            async with self._lock(t.unique_name):
                changed = await self._release(t) or changed
        if changed:
            await self._publish()

    async def _release(self, t: IscsiTarget) -> bool:
        global_dir = self._dir(t)
        table = mounts.read_mounts()
        entry = mounts.mounted_at(global_dir, table)
        if entry is not None:
            if mounts.users_of(entry.device, entry.root, table, self.pods_root):
                return False
            await mounts.unmount(global_dir)
        if not self._target_still_used(t):
            await iscsi.logout(t)
        await self.attachments.release(t.unique_name)
        self._record(t).unlink(missing_ok=True)
        if global_dir.is_dir():
            global_dir.rmdir()
        log.info("released %s", t.unique_name)
        return True

    def _target_still_used(self, t: IscsiTarget) -> bool:
        """Another LUN of the same target still mounted here: the session must stay."""
        table = mounts.read_mounts()
        for other in self._targets():
            if (other.portal, other.iqn) == (t.portal, t.iqn) and other.lun != t.lun \
                    and mounts.mounted_at(self._dir(other), table) is not None:
                return True
        return False

    async def _publish(self) -> None:
        """Node status: the iSCSI volumes mounted here, by the kubelet's unique names."""
        table = mounts.read_mounts()
        attached = {}
        for t in self._targets() if self.iscsi_root.is_dir() else []:
            entry = mounts.mounted_at(self._dir(t), table)
            if entry is not None:
                attached[t.unique_name] = entry.source
        try:
            await self.attachments.publish(attached)
        except Exception as e:  # noqa: BLE001 - status is informational; the claim Lease is what guards
            log.warning("publishing attached volumes failed: %s", e)
