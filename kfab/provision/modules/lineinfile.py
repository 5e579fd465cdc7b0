"""line: make sure one line is in (or out of) a text file, like Ansible's lineinfile."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, Fail, Module, as_bool, put_file


def edit_lines(text: str, line: str | None, regexp: str | None, present: bool) -> str:
    """The new text: with `regexp`, the last matching line is replaced (present) or every matching
    line removed (absent); without it, the exact line is appended if missing or removed."""
    lines = text.splitlines()
    pattern = re.compile(regexp) if regexp else None

    def matches(candidate: str) -> bool:
        return bool(pattern.search(candidate)) if pattern else candidate == line

    if not present:
        kept = [l for l in lines if not matches(l)]
        return "\n".join(kept) + "\n" if kept else ""
    hits = [i for i, l in enumerate(lines) if matches(l)]
    if hits:
        lines[hits[-1]] = line
    elif line not in lines:
        lines.append(line)
    return "\n".join(lines) + "\n"


def plan(args, host, files):
    path, present = args["path"], args["state"] == "present"
    if present and args["line"] is None:
        yield Fail("state=present needs 'line'")
        return
    if not present and args["line"] is None and not args["regexp"]:
        yield Fail("state=absent needs 'line' or 'regexp'")
        return
    current = host.file(path, content=True)
    if current is None:
        if not present:
            return
        if not as_bool(args["create"]):
            yield Fail(f"{path} does not exist (set create: true to create it)")
            return
    elif current.kind != "file":
        yield Fail(f"{path} is a {current.kind}, not a file")
        return
    before = current.content.decode() if current else ""
    after = edit_lines(before, None if args["line"] is None else str(args["line"]), args["regexp"], present)
    if after == before and current is not None:
        return
    yield from put_file(host, path, after.encode(), args["mode"], args["owner"], args["group"])


MODULE = Module("line", plan, {
    "path": Arg(required=True), "line": Arg(), "regexp": Arg(),
    "state": Arg(choices=("present", "absent"), default="present"),
    "create": Arg(default=False), "mode": Arg(), "owner": Arg(), "group": Arg(),
})
