"""apt_repository: a one-line apt source (`deb [signed-by=...] URL suite components`) as
ansible.builtin.apt_repository keeps it: present when the line is in any source file already, else appended
to /etc/apt/sources.list.d/<filename>.list (the name made from the URL as Ansible makes it); absent takes the
line out of every file (a file left empty is removed). apt's lists are refreshed after a change."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, octal_mode, put_file, q
from kfab.provision.modules.package import APT_UPDATE

SOURCES = "/etc/apt/sources.list.d"
SOURCE_FILES = f"/etc/apt/sources.list {SOURCES}/*.list"
SOURCE_TYPES = ("deb", "deb-src")


def suggested_filename(repo: str) -> str:
    """Ansible's name for a repo line's file: options, scheme and credentials dropped, the host and path
    joined by '_' (`deb [arch=amd64] https://apt.example.com/debian stable main` -> apt_example_com_debian)."""
    line = re.sub(r"\w+://", "", re.sub(r"\[[^\]]+\]", "", repo))
    parts = [part for part in line.split() if part not in SOURCE_TYPES]
    return "_".join(re.sub("[^a-zA-Z0-9]", " ", parts[0].split("@", 1)[-1]).split())


def plan(args, host, files):
    repo = " ".join(str(args["repo"]).split())
    if repo.split(" ", 1)[0] not in SOURCE_TYPES or len(repo.split()) < 3:
        yield Fail(f"Invalid repository string: {repo}")
        return
    listed = host.query(f"grep -lxF -- {q(repo)} {SOURCE_FILES} 2>/dev/null; true") or ""
    holding = [path for path in listed.split() if path]
    changed = False
    if args["state"] == "absent":
        for path in holding:
            current = host.file(path, content=True)
            kept = [line for line in current.content.decode().splitlines(keepends=True)
                    if " ".join(line.split()) != repo]
            if not "".join(kept).strip():
                yield Command(f"rm -f {q(path)}")
            else:
                yield from put_file(host, path, "".join(kept).encode(), current.mode)
            changed = True
    elif not holding:
        path = f"{SOURCES}/{args['filename'] or suggested_filename(repo)}.list"
        current = host.file(path, content=True)
        before = current.content.decode() if current is not None else ""
        before += "" if not before or before.endswith("\n") else "\n"
        yield from put_file(host, path, (before + repo + "\n").encode(), octal_mode(args["mode"]) or "0644")
        changed = True
    if changed and as_bool(args["update_cache"]):
        yield Command(APT_UPDATE)


MODULE = Module("apt_repository", plan, {
    "repo": Arg(required=True), "state": Arg(choices=("present", "absent"), default="present"),
    "filename": Arg(), "mode": Arg(), "update_cache": Arg(default=True),
})
