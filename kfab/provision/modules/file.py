"""file: a path's kind (file, directory, link, absent, touch) and attributes."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, attribute_changes, octal_mode, q


def make_directories(path: str, mode: str | None, owners: str) -> str:
    """mkdir -p, but as Ansible's file module: mode, owner and group go to every directory it creates, the
    missing parents too (`mkdir -p -m` gives the mode to the last one only)."""
    parts = path.rstrip("/").split("/")
    steps = []
    for end in range(1, len(parts) + 1):
        sub = "/".join(parts[:end])
        if not sub:
            continue
        make = f"mkdir {'-m ' + mode + ' ' if mode else ''}-- {q(sub)}" + (
            f" && chown {q(owners)} {q(sub)}" if owners else "")
        steps.append(f"{{ [ -d {q(sub)} ] || {{ {make}; }}; }}")
    return " && ".join(steps)


def plan(args, host, files):
    path, state = args["path"], args["state"]
    current = host.file(path)
    mode, owner, group = args["mode"], args["owner"], args["group"]
    if state == "absent":
        if current is not None:
            yield Command(f"rm -rf -- {q(path)}")
        return
    if state == "link":
        if not args["src"]:
            yield Fail("state=link needs 'src' (the link target)")
            return
        if current is None or current.kind != "link" or current.target != args["src"]:
            if current is not None and current.kind == "directory":
                yield Fail(f"{path} is a directory; refusing to replace it with a link")
                return
            yield Command(f"ln -sfn {q(args['src'])} {q(path)}")
        return
    if state == "directory":
        if current is None:
            yield Command(make_directories(path, octal_mode(mode), (owner or "") + (":" + group if group else "")))
            return
        if current.kind != "directory":
            yield Fail(f"{path} exists and is a {current.kind}, not a directory")
            return
    elif state == "touch":
        if current is None:
            yield Command(f"touch -- {q(path)}")
            wanted = octal_mode(mode)
            if wanted:
                yield Command(f"chmod {wanted} {q(path)}")
            if owner or group:
                yield Command(f"chown {q((owner or '') + (':' + group if group else ''))} {q(path)}")
            return
    elif state == "file":
        if current is None:
            yield Fail(f"{path} does not exist (state=file only changes attributes; use state=touch to create)")
            return
        if current.kind != "file":
            yield Fail(f"{path} is a {current.kind}, not a file")
            return
    yield from attribute_changes(path, current, mode, owner, group)


MODULE = Module("file", plan, {
    "path": Arg(required=True),
    "state": Arg(choices=("file", "directory", "absent", "link", "touch"), default="file"),
    "src": Arg(), "mode": Arg(), "owner": Arg(), "group": Arg(),
}, aliases={"dest": "path", "name": "path"})
