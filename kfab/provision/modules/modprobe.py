"""modprobe: a kernel module loaded now (with params) or unloaded, and with `persistent: present` also at
boot (/etc/modules-load.d/<name>.conf, options in /etc/modprobe.d/<name>.conf), as community.general.modprobe."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Module, put_file, q


def plan(args, host, files):
    name, present = str(args["name"]), args["state"] == "present"
    loaded = host.succeeds(f"grep -q '^{name.replace('-', '_')} ' /proc/modules")
    if present and not loaded:
        yield Command(f"modprobe {q(name)} {args['params'] or ''}".rstrip())
    elif not present and loaded:
        yield Command(f"modprobe -r {q(name)}")
    if args["persistent"] == "present":
        yield from put_file(host, f"/etc/modules-load.d/{name}.conf", f"{name}\n".encode(), "0644")
        if args["params"]:
            yield from put_file(host, f"/etc/modprobe.d/{name}.conf",
                                f"options {name} {args['params']}\n".encode(), "0644")
    elif args["persistent"] == "absent":
        for path in (f"/etc/modules-load.d/{name}.conf", f"/etc/modprobe.d/{name}.conf"):
            if host.file(path) is not None:
                yield Command(f"rm -f {q(path)}")


MODULE = Module("modprobe", plan, {
    "name": Arg(required=True), "state": Arg(choices=("present", "absent"), default="present"),
    "params": Arg(default=""), "persistent": Arg(choices=("disabled", "present", "absent"), default="disabled"),
})
