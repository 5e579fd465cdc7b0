"""apt: ansible.builtin.apt's common arguments (name/pkg, state present|absent, install_recommends,
update_cache, cache_valid_time) on kfab's package module. The cache is refreshed once per host per
run, before anything is installed; update_cache alone changes nothing visible, so it reports ok."""

from __future__ import annotations

from kfab.provision.modules import package
from kfab.provision.modules.base import Arg, Fail, Module

STATES = {"present": "present", "installed": "present", "absent": "absent", "removed": "absent"}


def plan(args, host, files):
    if args["name"] is None:
        if args["update_cache"]:
            return     # nothing to install: a fresh cache would change nothing kfab's tasks look at
        yield Fail("apt needs 'name' (or update_cache: true)")
        return
    yield from package.plan({"name": args["name"], "state": STATES[args["state"]],
                             "install_recommends": True if args["install_recommends"] is None
                             else args["install_recommends"]}, host, files)


MODULE = Module("apt", plan, {
    "name": Arg(), "state": Arg(choices=tuple(STATES), default="present"), "install_recommends": Arg(),
    "update_cache": Arg(default=False), "cache_valid_time": Arg(),
}, aliases={"pkg": "name", "package": "name", "update-cache": "update_cache"})
