"""lineinfile (also under kfab's older name `line`): one line in (or out of) a text file, with
Ansible's rules for regexp, search_string, insertafter/insertbefore (EOF, BOF or a regexp), backrefs,
firstmatch and create. edit_lines follows ansible.builtin.lineinfile's present()/absent() step by
step, so a role's lines land where Ansible would put them."""

from __future__ import annotations

import re

from kfab.provision.modules.base import (Arg, FILE_ARGS, Fail, Module, as_bool, attribute_changes, file_attributes,
                                         put_file)


def edit_lines(text: str, line: str | None, regexp: str | None, present: bool, *,
               insertafter: str | None = None, insertbefore: str | None = None, backrefs: bool = False,
               firstmatch: bool = False, search_string: str | None = None) -> str:
    lines = text.splitlines(keepends=True)
    if not present:
        return "".join(kept for kept in lines if not _matches(kept, line, regexp, search_string))
    assert line is not None
    pattern = re.compile(regexp) if regexp is not None else None
    anchor = insertafter or insertbefore
    anchor_re = re.compile(anchor) if anchor not in (None, "EOF", "BOF") else None
    found, at, match, exact = -1, -1, None, False
    if pattern is not None:
        for i, current in enumerate(lines):
            hit = pattern.search(current)
            if hit:
                found, match = i, hit
                if firstmatch:
                    break
    elif search_string is not None:
        for i, current in enumerate(lines):
            if search_string in current:
                found, match = i, True
                if firstmatch:
                    break
    if not match:
        for i, current in enumerate(lines):
            if current.rstrip("\r\n") == line:
                found, exact = i, True
            elif anchor_re is not None and anchor_re.search(current):
                at = i + 1 if insertafter else i
                if firstmatch:
                    break
    if found != -1:
        new = match.expand(line) if backrefs and isinstance(match, re.Match) else line
        if not new.endswith("\n"):
            new += "\n"
        if (regexp, search_string, match) == (None, None, None) and not exact:
            _insert_at_anchor(lines, line, at, insertafter)
        elif lines[found] != new:
            lines[found] = new
    elif backrefs:
        pass   # nothing to fill the backreferences from: never guess a line
    elif "BOF" in (insertbefore, insertafter):
        lines.insert(0, line + "\n")
    elif insertafter == "EOF" or at == -1:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines.append("\n")
        lines.append(line + "\n")
    elif insertafter:
        _insert_at_anchor(lines, line, at, insertafter)
    else:
        lines.insert(at, line + "\n")
    return "".join(lines)


def _insert_at_anchor(lines: list[str], line: str, at: int, insertafter) -> None:
    if insertafter:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += "\n"
        if len(lines) == at:
            if lines[at - 1].rstrip("\r\n") != line:
                lines.append(line + "\n")
        elif lines[at].rstrip("\r\n") != line:
            lines.insert(at, line + "\n")
    elif at <= 0:
        if lines[at].rstrip("\r\n") != line:
            lines.insert(at, line + "\n")
    elif lines[at - 1].rstrip("\r\n") != line:
        lines.insert(at, line + "\n")


def _matches(current: str, line, regexp, search_string) -> bool:
    if regexp is not None:
        return bool(re.search(regexp, current))
    if search_string is not None:
        return search_string in current
    return current.rstrip("\r\n") == line


def plan(args, host, files):
    path, present = args["path"], args["state"] == "present"
    regexp, search = args["regexp"], args["search_string"]
    if present and args["line"] is None:
        yield Fail("state=present needs 'line'")
        return
    if not present and args["line"] is None and regexp is None and search is None:
        yield Fail("state=absent needs 'line', 'regexp' or 'search_string'")
        return
    if as_bool(args["backrefs"]) and regexp is None:
        yield Fail("backrefs=true needs 'regexp'")
        return
    current = host.file(path, content=True)
    if current is None:
        if not present:
            return
        if as_bool(args["backrefs"]):
            return
        if not as_bool(args["create"]):
            yield Fail(f"Destination {path} does not exist !")
            return
    elif current.kind != "file":
        yield Fail(f"{path} is a {current.kind}, not a file")
        return
    before = current.content.decode() if current else ""
    line = None if args["line"] is None else str(args["line"])
    after = edit_lines(before, line, regexp, present, insertafter=args["insertafter"],
                       insertbefore=args["insertbefore"], backrefs=as_bool(args["backrefs"]),
                       firstmatch=as_bool(args["firstmatch"]), search_string=search)
    if after == before and current is not None:
        yield from attribute_changes(path, current, args["mode"], args["owner"], args["group"])
        return
    yield from put_file(host, path, after.encode(), **file_attributes(args))


ARGS = {
    "path": Arg(required=True), "line": Arg(), "regexp": Arg(), "search_string": Arg(),
    "state": Arg(choices=("present", "absent"), default="present"),
    "insertafter": Arg(), "insertbefore": Arg(), "backrefs": Arg(default=False), "firstmatch": Arg(default=False),
    "create": Arg(default=False), **FILE_ARGS,
}
ALIASES = {"dest": "path", "destfile": "path", "name": "path"}
MODULE = Module("lineinfile", plan, dict(ARGS), aliases=ALIASES)
LINE = Module("line", plan, dict(ARGS), aliases=ALIASES)   # kfab's first name for it; the shipped roles use lineinfile
