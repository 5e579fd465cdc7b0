"""Pod volumes as directories on the node, bind-mounted into the containers.

Each pod has `<root>/<pod uid>/volumes/<volume name>`. configMap, secret, downwardAPI and projected volumes
(with ServiceAccount tokens, renewed before they expire) are files written there and rewritten on every
sync, so a changed ConfigMap reaches running containers (the bind mount shows the directory, not a copy);
each file is replaced atomically (write + rename) so a reader never sees half a file. PVCs resolve to their
PV; hostPath/local PVs are used in place; NFS and iSCSI (PV sources and inline pod volumes) are mounted on
the host by kfab/node/storage before any container of the pod starts.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from kfab.node.containers import Lookup, field_value
from kfab.node.serviceaccount_tokens import ServiceAccountTokens, TokenFetchError
from kfab.node.storage.attach import Attachments
from kfab.node.storage.manager import NodeStorage, StorageError
from kfab.objects.meta import spec_of, status_of

DEFAULT_ROOT = Path("/var/lib/kfab/pods")
# PersistentVolume spec fields that are not its volume source.
PV_FIELDS = {"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy",
             "storageClassName", "volumeMode", "volumeAttributesClassName"}


class VolumeError(Exception):
    """A volume cannot be set up (yet); the message is the event the user sees."""

    def __init__(self, message: str, reason: str = "FailedMount"):
        super().__init__(message)
        self.reason = reason


def _write_atomic(path: Path, data: bytes, mode: int) -> bool:
    """Write if different; True when the file changed."""
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.kfab-tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def _sync_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for rel, (data, mode) in files.items():
        _write_atomic(directory / rel, data, mode)
    wanted = {directory / rel for rel in files}
    for existing in list(directory.rglob("*")):
        if existing.is_file() and existing not in wanted:
            existing.unlink()


def _projected(data: dict[str, bytes], items: list[dict] | None, default_mode: int, optional: bool,
               what: str) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeError(f"{what}: key {item['key']!r} not found")
        out[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return out


class PodVolumes:
    def __init__(self, root: Path, lookup: Lookup, client=None, node_name: str = "",
                 volumes_root: Path | None = None):
        self.root = root
        self.lookup = lookup
        self.client = client  # claims iSCSI volumes for this node (None: no claims, as in unit tests)
        self.tokens = ServiceAccountTokens(client)
        # Node-wide mounts (iSCSI) live next to the pods' directories: /var/lib/kfab/volumes.
        self.storage = NodeStorage(root, volumes_root or root.parent / "volumes", lookup,
                                   Attachments(client, node_name))

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def sync(self, pod: dict, pod_ip: str | None, host_ip: str | None) -> dict[str, Path]:
        """Create/refresh every volume of the pod; volume name -> host directory."""
        base = self.pod_dir(pod["metadata"]["uid"]) / "volumes"
        out: dict[str, Path] = {}
        try:
            for vol in spec_of(pod).get("volumes") or []:
                out[vol["name"]] = await self._volume(pod, vol, base / vol["name"], pod_ip, host_ip)
        except StorageError as e:
            raise VolumeError(str(e), e.reason) from None
        return out

    async def _volume(self, pod: dict, vol: dict, path: Path, pod_ip: str | None, host_ip: str | None) -> Path:
        namespace = pod["metadata"]["namespace"]
        name = vol["name"]
        if "hostPath" in vol:
            hp = vol["hostPath"]
            path = Path(hp["path"])
            kind = hp.get("type") or ""
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate" and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            elif kind in ("Directory", "File") and not path.exists():
                raise VolumeError(f'hostPath type check failed: {path} is not a {kind.lower()}')
        elif "emptyDir" in vol:
            # World-writable, as the kubelet makes it: containers running as any user share it.
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
        elif "configMap" in vol or "secret" in vol:
            kind = "ConfigMap" if "configMap" in vol else "Secret"
            src = vol.get("configMap") or vol.get("secret")
            _sync_files(path, await self._object_files(kind, src, namespace, name,
                                                       src.get("defaultMode", 0o644)))
        elif "downwardAPI" in vol:
            src = vol["downwardAPI"]
            _sync_files(path, self._field_files(pod, src, src.get("defaultMode", 0o644), name, pod_ip, host_ip))
        elif "projected" in vol:
            # The projected volume's sources share one directory (as the kubelet's projection).
            mode = vol["projected"].get("defaultMode", 0o644)
            files: dict[str, tuple[bytes, int]] = {}
            for source in vol["projected"].get("sources") or []:
                if "configMap" in source or "secret" in source:
                    kind = "ConfigMap" if "configMap" in source else "Secret"
                    files.update(await self._object_files(kind, source.get("configMap") or source["secret"],
                                                          namespace, name, mode))
                elif "downwardAPI" in source:
                    files.update(self._field_files(pod, source["downwardAPI"], mode, name, pod_ip, host_ip))
                elif "serviceAccountToken" in source:
                    files.update(await self._token_file(pod, source["serviceAccountToken"], mode, name))
                else:
                    kind = next(iter(source), "?")
                    raise VolumeError(f'volume "{name}": unsupported projected source {kind}', "UnsupportedVolume")
            _sync_files(path, files)
        elif "nfs" in vol:
            await self.storage.mount_nfs(path, vol["nfs"], None, False, name)
        elif "iscsi" in vol:
            read_only = bool(vol["iscsi"].get("readOnly"))
            await self.storage.mount_iscsi(path, vol["iscsi"], namespace, read_only, name, exclusive=True)
        elif "persistentVolumeClaim" in vol:
            path = await self._claim_path(namespace, vol["persistentVolumeClaim"], name, path)
        else:
            source = next((k for k in vol if k != "name"), "?")
            raise VolumeError(f'volume "{name}": unsupported volume source {source}', "UnsupportedVolume")
        return path

    async def _object_files(self, kind: str, src: dict, namespace: str, volume: str,
                            default_mode: int) -> dict[str, tuple[bytes, int]]:
        """The files of a ConfigMap or Secret source (all keys, or its `items`)."""
        obj_name = src.get("name") or src.get("secretName")
        obj = await self.lookup(kind, namespace, obj_name)
        what = f'{kind.lower()} "{obj_name}"'
        if obj is None and not src.get("optional"):
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}": {what} not found')
        data: dict[str, bytes] = {}
        if obj is not None:
            if kind == "Secret":
                data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            else:
                data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return _projected(data, src.get("items"), src.get("defaultMode", default_mode), bool(src.get("optional")),
                          what)

    async def _token_file(self, pod: dict, src: dict, mode: int, volume: str) -> dict[str, tuple[bytes, int]]:
        try:
            token = await self.tokens.token(pod, src)
        except TokenFetchError as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}": {e}') from None
        return {src["path"]: (token.encode(), mode)}

    @staticmethod
    def _field_files(pod: dict, src: dict, default_mode: int, volume: str, pod_ip: str | None,
                     host_ip: str | None) -> dict[str, tuple[bytes, int]]:
        files = {}
        for item in src.get("items") or []:
            if not item.get("fieldRef"):
                raise VolumeError(f'volume "{volume}": only fieldRef items are supported in downwardAPI')
            value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
            files[item["path"]] = (value.encode(), item.get("mode", default_mode))
        return files

    async def _claim_path(self, namespace: str, source: dict, volume: str, path: Path) -> Path:
        claim = source["claimName"]
        pvc = await self.lookup("PersistentVolumeClaim", namespace, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = spec_of(pvc).get("volumeName")
        if not pv_name or status_of(pvc).get("phase") != "Bound":
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound yet')
        pv = await self.lookup("PersistentVolume", "", pv_name)
        if pv is None:
            raise VolumeError(f'persistentvolume "{pv_name}" not found')
        spec = spec_of(pv)
        for local in ("hostPath", "local"):
            if local in spec:
                path = Path(spec[local]["path"])
                path.mkdir(parents=True, exist_ok=True)
                return path
        read_only = bool(source.get("readOnly"))
        if "nfs" in spec:
            await self.storage.mount_nfs(path, spec["nfs"], spec.get("mountOptions"), read_only, pv_name)
            return path
        if "iscsi" in spec:
            # ext4 on one LUN mounted by two nodes corrupts it: one node at a time unless everyone reads only.
            read_only = read_only or bool(spec["iscsi"].get("readOnly"))
            shared = read_only and "ReadOnlyMany" in (spec.get("accessModes") or [])
            await self.storage.mount_iscsi(path, spec["iscsi"], namespace, read_only, pv_name, exclusive=not shared)
            return path
        kind = next((k for k in spec if k not in PV_FIELDS), "unknown")
        raise VolumeError(f'volume "{volume}": persistentvolume "{pv_name}" uses unsupported volume source '
                          f'{kind} on this node', "UnsupportedVolume")

    def mounts(self, container: dict, paths: dict[str, Path]) -> list[dict]:
        out = []
        for vm in container.get("volumeMounts") or []:
            source = paths.get(vm["name"])
            if source is None:
                raise VolumeError(f'container "{container["name"]}": volumeMount of unknown volume "{vm["name"]}"')
            if vm.get("subPath"):
                source = source / vm["subPath"]
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            out.append({"type": "bind", "source": str(source), "target": vm["mountPath"],
                        "read_only": bool(vm.get("readOnly"))})
        return out

    def remove(self, uid: str) -> None:
        """Delete the pod's directory; network volumes are unmounted first (in the background: an NFS server
        or iSCSI logout can take seconds), and an iSCSI volume no other pod here uses is logged out."""
        self.tokens.forget(uid)
        self.storage.release_pod(self.pod_dir(uid))

    async def reconcile(self, keep: set[str]) -> None:
        """At start-up and on every orphan sweep: remove the directories of pods not in `keep` (left by pods
        that went while the agent was down), then release the iSCSI volumes no pod binds any more."""
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir() and child.name not in keep:
                    self.remove(child.name)
        await self.storage.release_unused()
