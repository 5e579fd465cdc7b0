"""Pod volumes as directories on the node, bind-mounted into the containers.

Each pod has `<root>/<pod uid>/volumes/<volume name>`. configMap, secret and downwardAPI volumes are files
written there and rewritten on every sync, so a changed ConfigMap reaches running containers (the bind mount
shows the directory, not a copy); each file is replaced atomically (write + rename) so a reader never sees
half a file. PVCs resolve to their PV; hostPath/local PVs mount directly, NFS/iSCSI arrive with the storage work.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from kfab.node.containers import Lookup, field_value

DEFAULT_ROOT = Path("/var/lib/kfab/pods")


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
    def __init__(self, root: Path, lookup: Lookup, client=None):
        self.root = root
        self.lookup = lookup
        self.client = client  # for PVC -> PV

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def sync(self, pod: dict, pod_ip: str | None, host_ip: str | None) -> dict[str, Path]:
        """Create/refresh every volume of the pod; volume name -> host directory."""
        uid, namespace = pod["metadata"]["uid"], pod["metadata"]["namespace"]
        base = self.pod_dir(uid) / "volumes"
        out: dict[str, Path] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol["name"]
            path = base / name
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
                path.mkdir(parents=True, exist_ok=True)
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
                    else:
                        kind = next(iter(source), "?")
                        raise VolumeError(f'volume "{name}": unsupported projected source {kind}', "UnsupportedVolume")
                _sync_files(path, files)
            elif "persistentVolumeClaim" in vol:
                path = await self._claim_path(namespace, vol["persistentVolumeClaim"]["claimName"], name)
            else:
                source = next((k for k in vol if k != "name"), "?")
                raise VolumeError(f'volume "{name}": unsupported volume source {source}', "UnsupportedVolume")
            out[name] = path
        return out

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

    async def _claim_path(self, namespace: str, claim: str, volume: str) -> Path:
        pvc = await self.lookup("PersistentVolumeClaim", namespace, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name or (pvc.get("status") or {}).get("phase") != "Bound":
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound yet')
        pv = await self.lookup("PersistentVolume", "", pv_name)
        if pv is None:
            raise VolumeError(f'persistentvolume "{pv_name}" not found')
        spec = pv.get("spec") or {}
        for local in ("hostPath", "local"):
            if local in spec:
                path = Path(spec[local]["path"])
                path.mkdir(parents=True, exist_ok=True)
                return path
        source = next((k for k in ("nfs", "iscsi", "csi") if k in spec), "unknown")
        raise VolumeError(f'volume "{volume}": persistentvolume "{pv_name}" uses unsupported volume source '
                          f'{source} on this node (yet)', "UnsupportedVolume")

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
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)
