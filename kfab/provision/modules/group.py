"""group: a local group present (with a gid, as a system group) or absent."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, q


def plan(args, host, files):
    name, present = str(args["name"]), args["state"] == "present"
    current = host.group(name)
    if not present:
        if current is not None:
            yield Command(f"groupdel {q(name)}")
        return
    gid = None if args["gid"] is None else str(args["gid"])
    if gid is not None and not gid.isdigit():
        yield Fail(f"gid must be a number, got {gid!r}")
        return
    if current is None:
        flags = (f"-g {gid} " if gid else "") + ("-r " if as_bool(args["system"]) else "")
        yield Command(f"groupadd {flags}{q(name)}")
    elif gid is not None and int(gid) != current["gid"]:
        yield Command(f"groupmod -g {gid} {q(name)}")


MODULE = Module("group", plan, {
    "name": Arg(required=True), "state": Arg(choices=("present", "absent"), default="present"),
    "gid": Arg(), "system": Arg(default=False),
})
