"""replace: every match of a regular expression in a file replaced (Python backreferences \\1, \\g<name>),
optionally only between the first match of `after` and the first match of `before`, as
ansible.builtin.replace does (MULTILINE: ^ and $ match at each line)."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, FILE_ARGS, Fail, Module, file_attributes, put_file


def replace_text(text: str, regexp: str, replacement: str, after: str | None = None,
                 before: str | None = None) -> tuple[str, int]:
    start, end = 0, len(text)
    if after:
        found = re.search(after, text, re.MULTILINE | re.DOTALL)
        start = found.end() if found else end
    if before:
        found = re.search(before, text[start:], re.MULTILINE | re.DOTALL)
        end = start + found.start() if found else end
    section, count = re.subn(regexp, replacement, text[start:end], flags=re.MULTILINE)
    return text[:start] + section + text[end:], count


def plan(args, host, files):
    path = args["path"]
    current = host.file(path, content=True)
    if current is None:
        yield Fail(f"Path {path} does not exist !")
        return
    if current.kind != "file":
        yield Fail(f"{path} is a {current.kind}, not a file")
        return
    before = current.content.decode()
    try:
        after, count = replace_text(before, str(args["regexp"]), str(args["replace"] or ""), args["after"],
                                    args["before"])
    except re.error as exc:
        yield Fail(f"invalid regular expression: {exc}")
        return
    if after != before:
        yield from put_file(host, path, after.encode(), **file_attributes(args))


MODULE = Module("replace", plan, {
    "path": Arg(required=True), "regexp": Arg(required=True), "replace": Arg(default=""),
    "after": Arg(), "before": Arg(), **FILE_ARGS,
}, aliases={"dest": "path", "destfile": "path", "name": "path"})
