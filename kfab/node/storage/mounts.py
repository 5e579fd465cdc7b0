"""The host's mount table and running mount commands.

What is mounted is read from /proc/self/mountinfo, never remembered: a restarted agent sees exactly what its
predecessor left, and a mount made by hand is handled like one of ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")


class CommandError(Exception):
    """A host command failed; the message is the command's own output (what the user needs in the event)."""


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    device: str      # major:minor — every bind of one filesystem shares it
    root: str        # the directory of the filesystem this mount shows (a bind of a subdirectory shows it)
    fs_type: str
    source: str
    options: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    out, i = [], 0
    while i < len(field):
        octal = field[i + 1:i + 4]
        if field[i] == "\\" and len(octal) == 3 and octal.isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        entries.append(MountEntry(mount_point=_unescape(fields[4]), device=fields[2], root=_unescape(fields[3]),
                                  fs_type=tail[0], source=_unescape(tail[1]),
                                  options=f"{fields[5]},{tail[2] if len(tail) > 2 else ''}"))
    return entries


def read_mounts() -> list[MountEntry]:
    return parse_mountinfo(MOUNTINFO.read_text())


def mounted_at(path: Path, entries: list[MountEntry]) -> MountEntry | None:
    """The top-most mount on path (the last one listed), or None."""
    found = None
    for e in entries:
        if e.mount_point == str(path):
            found = e
    return found


def mounts_under(path: Path, entries: list[MountEntry]) -> list[MountEntry]:
    """Mounts at or below path, deepest first (the order to unmount them in)."""
    prefix = str(path).rstrip("/") + "/"
    inside = [e for e in entries if e.mount_point == str(path) or e.mount_point.startswith(prefix)]
    return sorted(inside, key=lambda e: e.mount_point.count("/"), reverse=True)


def users_of(device: str, root: str, entries: list[MountEntry], under: Path) -> list[str]:
    """Mount points below `under` that show the filesystem `device` (the pods' binds of a node-wide mount)."""
    prefix = str(under).rstrip("/") + "/"
    return [e.mount_point for e in entries if e.device == device and e.root.startswith(root)
            and e.mount_point.startswith(prefix)]


async def run(args: list[str], timeout: float = 60.0, hide: tuple[str, ...] = ()) -> str:
    """Run a host command; its stdout, or CommandError with its output. `hide` masks secrets in messages."""
    shown = " ".join("<hidden>" if a in hide else a for a in args)
    try:
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    except FileNotFoundError:
        raise CommandError(f"{shown}: executable file not found in $PATH") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise CommandError(f"{shown}: timed out after {int(timeout)}s") from None
    if proc.returncode != 0:
        message = (err.decode(errors="replace") + out.decode(errors="replace")).strip()
        for secret in hide:
            message = message.replace(secret, "<hidden>")
        raise CommandError(f"{shown} failed (exit status {proc.returncode}): {message}")
    return out.decode(errors="replace")


async def bind(source: Path, target: Path, read_only: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    await run(["mount", "--bind", str(source), str(target)])
    if read_only:
        await run(["mount", "-o", "remount,bind,ro", str(target)])


async def unmount(path: Path, timeout: float = 30.0) -> None:
    """Unmount; a mount whose server is gone may hang a plain umount, so fall back to a lazy one."""
    try:
        await run(["umount", str(path)], timeout=timeout)
    except CommandError as e:
        if "not mounted" in str(e):
            return
        log.warning("%s; unmounting lazily", e)
        await run(["umount", "-l", str(path)], timeout=timeout)


def remove_tree(path: Path, mount_points: set[str] | None = None) -> bool:
    """Delete a directory tree without ever descending into a mount (a pod's NFS data must survive a failed
    unmount); False when something mounted was left in place."""
    if mount_points is None:
        mount_points = {e.mount_point for e in read_mounts()}
    clean = True
    try:
        if path.is_dir() and not path.is_symlink():
            if str(path) in mount_points or os.path.ismount(path):
                return False
            for child in list(path.iterdir()):
                clean = remove_tree(child, mount_points) and clean
            if clean:
                path.rmdir()
        else:
            path.unlink()
    except FileNotFoundError:  # a concurrent removal got there first
        pass
    return clean
