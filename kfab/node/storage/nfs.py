"""NFS volumes: mounted straight onto the pod's volume directory, one mount per pod, as the kubelet does
(NFS needs no node-wide attach step; the server shares the data between pods and nodes)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kfab.node.storage.mounts import mounted_at, read_mounts, run

MOUNT_TIMEOUT = 60.0  # mount.nfs retries a dead server for minutes; the pod's sync retries instead


def nfs_remote(source: dict) -> str:
    """server:path as mount.nfs wants it (an IPv6 server in brackets)."""
    server = str(source.get("server") or "")
    try:
        if ipaddress.ip_address(server).version == 6:
            server = f"[{server}]"
    except ValueError:
        pass
    return f"{server}:{source.get('path') or '/'}"


def mount_options(mount_options_: list[str] | None, read_only: bool) -> list[str]:
    """The PV's mountOptions (each may hold several, comma-separated) plus ro for a read-only volume."""
    out: list[str] = []
    for entry in mount_options_ or []:
        out.extend(o.strip() for o in str(entry).split(",") if o.strip())
    if read_only and "ro" not in out:
        out = [o for o in out if o != "rw"] + ["ro"]
    return out


def mount_command(source: dict, options: list[str] | None, read_only: bool, target: Path) -> list[str]:
    cmd = ["mount", "-t", "nfs"]
    opts = mount_options(options, read_only or bool(source.get("readOnly")))
    if opts:
        cmd += ["-o", ",".join(opts)]
    return cmd + [nfs_remote(source), str(target)]


async def mount_nfs(source: dict, options: list[str] | None, read_only: bool, target: Path) -> None:
    """Mount unless the pod's directory already shows this export (a restarted agent reuses it)."""
    current = mounted_at(target, read_mounts())
    if current is not None and current.fs_type.startswith("nfs"):
        return
    target.mkdir(parents=True, exist_ok=True)
    await run(mount_command(source, options, read_only, target), timeout=MOUNT_TIMEOUT)
