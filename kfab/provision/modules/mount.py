"""mount: a filesystem's /etc/fstab line and whether it is mounted now, as ansible.posix.mount: state
mounted (line + mounted), present (line only), unmounted (mounted no more, line kept), absent (neither)."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, Command, Fail, Module, put_file, q
from kfab.provision.modules.lineinfile import edit_lines

FSTAB = "/etc/fstab"


def plan(args, host, files):
    path, state = str(args["path"]).rstrip("/") or "/", args["state"]
    fstab = args["fstab"]
    current = host.file(fstab, content=True)
    before = current.content.decode() if current is not None and current.content else ""
    owns = r"^\s*\S+\s+" + re.escape(path) + r"\s"
    if state in ("mounted", "present"):
        if not args["src"] or not args["fstype"]:
            yield Fail(f"state={state} needs 'src' and 'fstype'")
            return
        line = f"{args['src']} {path} {args['fstype']} {args['opts']} {args['dump']} {args['passno']}"
        after = edit_lines(before, line, owns, True)
    elif state == "absent":
        after = edit_lines(before, None, owns, False)
    else:
        after = before
    if after != before:
        yield from put_file(host, fstab, after.encode(), "0644")
    mounted = host.succeeds(f"mountpoint -q {q(path)}")
    if state == "mounted":
        if not mounted:
            yield Command(f"mkdir -p {q(path)} && mount {q(path)}")
        elif after != before:
            yield Command(f"mount -o remount {q(path)}")
    elif state in ("unmounted", "absent") and mounted:
        yield Command(f"umount {q(path)}")


MODULE = Module("mount", plan, {
    "path": Arg(required=True), "src": Arg(), "fstype": Arg(), "opts": Arg(default="defaults"),
    "dump": Arg(default="0"), "passno": Arg(default="0"), "fstab": Arg(default=FSTAB),
    "state": Arg(required=True, choices=("mounted", "present", "unmounted", "absent")),
}, aliases={"name": "path"})
