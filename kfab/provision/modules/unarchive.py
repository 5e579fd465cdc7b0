"""unarchive: a tar or zip archive from the role's files/ (or, with remote_src, one already on the host)
extracted into an existing dest directory. Done means every member is there already with its size (as
listed from the archive here; Ansible compares size and mtime), or `creates` exists."""

from __future__ import annotations

import io
import posixpath
import tarfile
import uuid
import zipfile

from kfab.provision.modules.base import Arg, Command, Fail, Module, PutFile, as_bool, q


def members(data: bytes) -> tuple[str, dict[str, int | None]]:
    """('tar' or 'zip', {member path: size, None for a directory}) of an archive's bytes."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "zip", {i.filename.rstrip("/"): None if i.is_dir() else i.file_size for i in archive.infolist()}
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            return "tar", {m.name.removeprefix("./"): m.size if m.isfile() else None
                           for m in archive.getmembers() if m.name not in (".", "./")}
    except tarfile.TarError:
        raise ValueError("not a tar or zip archive") from None


def _all_there(names: dict, dest: str) -> str:
    """A shell check that exits 0 when every member exists (files with their size)."""
    checks = []
    for name, size in names.items():
        path = q(posixpath.join(dest, name))
        checks.append(f"[ -e {path} ]" if size is None else f"[ \"$(stat -c %s {path} 2>/dev/null)\" = {size} ]")
    return " && ".join(checks)


def plan(args, host, files):
    dest, src = str(args["dest"]), str(args["src"])
    directory = host.file(dest)
    if directory is None or directory.kind != "directory":
        yield Fail(f"dest {dest} must be an existing directory")
        return
    if args["creates"] and host.file(str(args["creates"])) is not None:
        return
    if as_bool(args["remote_src"]):
        if not args["creates"]:
            yield Fail("unarchive with remote_src needs 'creates' (kfab cannot list an archive on the host)")
            return
        kind, upload, names = ("zip" if src.endswith(".zip") else "tar"), None, {}
        archive = src
    else:
        data = files.read_file(src)
        try:
            kind, names = members(data)
        except ValueError as exc:
            yield Fail(f"{src}: {exc}")
            return
        if names and host.succeeds(_all_there(names, dest)):
            return
        archive = posixpath.join(dest, f".kfab-{uuid.uuid4().hex[:8]}.archive")
        upload = PutFile(archive, data, "0600")
    if upload is not None:
        yield upload
    extract = f"unzip -o -q {q(archive)} -d {q(dest)}" if kind == "zip" else f"tar -xf {q(archive)} -C {q(dest)}"
    cleanup = f"; rc=$?; rm -f {q(archive)}; exit $rc" if upload is not None else ""
    yield Command(f"{extract}{cleanup}")
    if args["owner"] or args["group"]:
        who = (args["owner"] or "") + (":" + args["group"] if args["group"] else "")
        targets = " ".join(q(posixpath.join(dest, n)) for n in names) if upload is not None else f"-R {q(dest)}"
        yield Command(f"chown {q(who)} {targets}")


MODULE = Module("unarchive", plan, {
    "src": Arg(required=True), "dest": Arg(required=True), "remote_src": Arg(default=False), "creates": Arg(),
    "owner": Arg(), "group": Arg(),
})
