"""The bundle file: a plain tar whose manifest names every member with its sha256 and size.

Reproducible: members in sorted order after manifest.json and SHA256SUMS, no directory entries, mtime 0, owner
root/root without names, modes 0644 — the same inputs give the same bytes, so the bundle's identity (the sha256
of its manifest) names its content. SHA256SUMS repeats the checksums in `sha256sum -c` form for people
without kfab. Reading checks every member against the manifest as it streams by.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

FORMAT = "kfab-bundle/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
CHUNK = 1 << 20
DEFAULT_CACHE = Path.home() / ".cache" / "kfab" / "bundles"
KEEP = 3


class BundleError(Exception):
    pass


def kfab_release() -> str:
    """The release of the kfab running here: what `kfab bundle create` records, what `kfab up --bundle` expects."""
    try:
        return importlib.metadata.version("kfab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Member:
    path: str        # inside the bundle, POSIX, relative
    source: Path     # the file on this machine


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safe(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts or path in (MANIFEST, SUMS):
        raise BundleError(f"member {path!r}: not a relative path inside the bundle")
    return path


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, 0, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write(out: Path, fields: dict, members: list[Member]) -> str:
    """Write the bundle; returns its identity (the manifest's sha256). `fields` go into the manifest as they are."""
    members = sorted(members, key=lambda m: m.path)
    files = {}
    for m in members:
        _safe(m.path)
        files[m.path] = {"sha256": file_digest(m.source), "size": m.source.stat().st_size}
    manifest = json.dumps({"format": FORMAT, **fields, "files": files}, indent=1, sort_keys=True).encode() + b"\n"
    sums = "".join(f"{f['sha256']}  {path}\n" for path, f in files.items())
    sums = (f"{hashlib.sha256(manifest).hexdigest()}  {MANIFEST}\n" + sums).encode()
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info(MANIFEST, len(manifest)), io.BytesIO(manifest))
        tar.addfile(_info(SUMS, len(sums)), io.BytesIO(sums))
        for m in members:
            with open(m.source, "rb") as f:
                tar.addfile(_info(m.path, files[m.path]["size"]), f)
    partial.rename(out)
    return hashlib.sha256(manifest).hexdigest()


@dataclass
class Opened:
    manifest: dict
    identity: str


def _members(path: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    try:
        tar = tarfile.open(path, "r:")
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except tarfile.TarError as exc:
        raise BundleError(f"{path}: not a kfab bundle (not a tar file: {exc})") from None
    with tar:
        try:
            for info in tar:
                yield info, tar
        except tarfile.TarError as exc:
            raise BundleError(f"{path}: the tar file is damaged or cut short ({exc}); copy it again") from None


def read(path: Path, extract_to: Path | None = None) -> Opened:
    """Check every member of the bundle at `path` against its manifest (and extract them under `extract_to`).
    BundleError names the first bad member; nothing is trusted until the whole file has been read."""
    manifest = identity = None
    seen: set[str] = set()
    sums_text = None
    for info, tar in _members(path):
        name = info.name
        if not info.isfile():
            raise BundleError(f"{path}: member {name!r} is not a regular file (a kfab bundle has files only)")
        data = tar.extractfile(info)
        if name == MANIFEST:
            raw = data.read()
            identity = hashlib.sha256(raw).hexdigest()
            try:
                manifest = json.loads(raw)
            except ValueError as exc:
                raise BundleError(f"{path}: member {MANIFEST} is not JSON ({exc})") from None
            if manifest.get("format") != FORMAT:
                raise BundleError(f"{path}: {MANIFEST} says format {manifest.get('format')!r}, "
                                  f"this kfab reads {FORMAT!r}")
            if extract_to is not None:
                (extract_to / MANIFEST).write_bytes(raw)
            continue
        if manifest is None:
            raise BundleError(f"{path}: member {name!r} comes before {MANIFEST} (not a kfab bundle)")
        if name == SUMS:
            sums_text = data.read().decode(errors="replace")
            continue
        expected = manifest["files"].get(name)
        if expected is None:
            raise BundleError(f"{path}: member {name!r} is not in the manifest")
        if name in seen:
            raise BundleError(f"{path}: member {name!r} appears twice")
        seen.add(name)
        digest, size = hashlib.sha256(), 0
        target = None
        if extract_to is not None:
            target = extract_to / _safe(name)
            target.parent.mkdir(parents=True, exist_ok=True)
        with (open(target, "wb") if target is not None else _Discard()) as out:
            try:
                while chunk := data.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            except tarfile.TarError:
                raise BundleError(f"{path}: member {name!r} is cut short (the file ends inside it); "
                                  "copy the bundle again") from None
        if size != expected["size"] or digest.hexdigest() != expected["sha256"]:
            raise BundleError(f"{path}: member {name!r} is damaged: sha256 {digest.hexdigest()} ({size} bytes), "
                              f"the manifest says {expected['sha256']} ({expected['size']} bytes)")
    if manifest is None:
        raise BundleError(f"{path}: no {MANIFEST} (not a kfab bundle)")
    missing = sorted(set(manifest["files"]) - seen)
    if missing:
        raise BundleError(f"{path}: member {missing[0]!r} is missing"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                          + ": the copy is incomplete")
    _check_sums(path, sums_text, manifest, identity)
    return Opened(manifest, identity)


def _check_sums(path: Path, text: str | None, manifest: dict, identity: str) -> None:
    if text is None:
        raise BundleError(f"{path}: member {SUMS} is missing")
    listed = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    expected = {MANIFEST: identity, **{n: f["sha256"] for n, f in manifest["files"].items()}}
    for name, digest in expected.items():
        if listed.get(name) != digest:
            raise BundleError(f"{path}: {SUMS} disagrees with the manifest on member {name!r}")
    for name in listed.keys() - expected.keys():
        raise BundleError(f"{path}: {SUMS} lists {name!r}, which is not in the bundle")


class _Discard:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data: bytes) -> None:
        pass


def _first_manifest(path: Path) -> bytes:
    for info, tar in _members(path):
        if info.name != MANIFEST or not info.isfile():
            break
        return tar.extractfile(info).read()
    raise BundleError(f"{path}: no {MANIFEST} first (not a kfab bundle)")


def identity_of(path: Path) -> str:
    """The bundle's identity from its first member (the manifest), without checking the rest."""
    return hashlib.sha256(_first_manifest(path)).hexdigest()


def manifest_of(path: Path) -> dict:
    """The bundle's manifest from its first member, without checking the rest (`read` checks everything)."""
    try:
        manifest = json.loads(_first_manifest(path))
    except ValueError as exc:
        raise BundleError(f"{path}: member {MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"{path}: {MANIFEST} says format {found!r}, this kfab reads {FORMAT!r}")
    return manifest


def unpacked(path: Path, cache: Path = DEFAULT_CACHE) -> tuple[Path, dict]:
    """The bundle checked, and extracted once per identity under `cache`: (its directory, its manifest)."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / identity_of(path)[:20]
    if (target / ".complete").exists():
        return target, read(path).manifest
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
    try:
        read(path, extract_to=partial)
        (partial / ".complete").write_text("")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _prune(cache, keep=KEEP)
    return target, json.loads((target / MANIFEST).read_text())


def _prune(cache: Path, keep: int) -> None:
    """An unpacked bundle is ~200 MB: keep only the newest few."""
    done = sorted((d for d in cache.iterdir() if (d / ".complete").exists()), key=lambda d: d.stat().st_mtime)
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
