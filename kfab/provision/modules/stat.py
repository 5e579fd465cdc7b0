"""stat: what is at a path, registered in Ansible's shape (`r.stat.exists`, isdir, isreg, islnk, mode,
pw_name, gr_name, size, checksum...). Reads only; never a change."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Module, Result, as_bool


def plan(args, host, files):
    path = str(args["path"])
    info = host.stat(path, follow=as_bool(args["follow"]),
                     checksum=as_bool(args["get_checksum"]) and args["checksum_algorithm"] == "sha1")
    yield Result({"stat": info if info is not None else {"exists": False}})


MODULE = Module("stat", plan, {
    "path": Arg(required=True), "follow": Arg(default=False), "get_checksum": Arg(default=True),
    "checksum_algorithm": Arg(choices=("sha1",), default="sha1"),
    "get_mime": Arg(default=False), "get_attributes": Arg(default=False),
}, aliases={"dest": "path", "name": "path"})
