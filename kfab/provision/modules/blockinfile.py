"""blockinfile: a block of lines between marker lines ("# BEGIN ANSIBLE MANAGED BLOCK" ... END), put
where ansible.builtin.blockinfile puts it (replacing the old block, else after/before an anchor)."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, FILE_ARGS, Fail, Module, as_bool, file_attributes, put_file

DEFAULT_MARKER = "# {mark} ANSIBLE MANAGED BLOCK"


def edit_block(text: str, block: str, present: bool, marker: str = DEFAULT_MARKER, begin: str = "BEGIN",
               end: str = "END", insertafter: str | None = None, insertbefore: str | None = None) -> str:
    lines = text.splitlines(keepends=True)
    first = marker.replace("{mark}", begin) + "\n"
    last = marker.replace("{mark}", end) + "\n"
    wanted = [first] + [text + "\n" for text in block.splitlines()] + [last] if present and block else []
    start = stop = None
    for i, line in enumerate(lines):
        if line == first:
            start = i
        if line == last:
            stop = i
    if start is None or stop is None:
        anchor = insertafter if insertafter is not None else insertbefore
        if anchor not in (None, "EOF", "BOF"):
            pattern = re.compile(anchor)
            start = None
            for i, line in enumerate(lines):
                if pattern.search(line):
                    start = i
            if start is None:
                start = len(lines)
            elif insertafter is not None:
                start += 1
        elif insertbefore is not None:     # BOF
            start = 0
        else:                               # EOF (the default)
            start = len(lines)
    elif start < stop:
        del lines[start:stop + 1]
    else:
        del lines[stop:start + 1]
        start = stop
    if start > 0 and not lines[start - 1].endswith("\n"):
        lines[start - 1] += "\n"
    lines[start:start] = wanted
    return "".join(lines)


def plan(args, host, files):
    path, present = args["path"], args["state"] == "present"
    if args["insertafter"] is not None and args["insertbefore"] is not None:
        yield Fail("insertafter and insertbefore are mutually exclusive")
        return
    current = host.file(path, content=True)
    if current is None:
        if not present:
            return
        if not as_bool(args["create"]):
            yield Fail(f"Path {path} does not exist !")
            return
    elif current.kind != "file":
        yield Fail(f"{path} is a {current.kind}, not a file")
        return
    before = current.content.decode() if current else ""
    after = edit_block(before, str(args["block"] or ""), present, str(args["marker"]),
                       str(args["marker_begin"]), str(args["marker_end"]),
                       args["insertafter"], args["insertbefore"])
    if after == before and current is not None:
        return
    yield from put_file(host, path, after.encode(), **file_attributes(args))


MODULE = Module("blockinfile", plan, {
    "path": Arg(required=True), "block": Arg(default=""), "marker": Arg(default=DEFAULT_MARKER),
    "marker_begin": Arg(default="BEGIN"), "marker_end": Arg(default="END"),
    "state": Arg(choices=("present", "absent"), default="present"),
    "insertafter": Arg(), "insertbefore": Arg(), "create": Arg(default=False),
    **FILE_ARGS,
}, aliases={"dest": "path", "destfile": "path", "name": "path"})
