"""sysctl: a kernel setting, persisted in /etc/sysctl.d and applied now."""

from __future__ import annotations

import re

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, put_file, q
from kfab.provision.modules.lineinfile import edit_lines


def plan(args, host, files):
    name, value = str(args["name"]), args["value"]
    present = args["state"] == "present"
    if present and value is None:
        yield Fail("state=present needs 'value'")
        return
    if isinstance(value, bool):
        value = int(value)
    value = None if value is None else " ".join(str(value).split())
    conf = args["sysctl_file"]
    current = host.file(conf, content=True)
    before = current.content.decode() if current and current.content is not None else ""
    after = edit_lines(before, f"{name} = {value}" if present else None,
                       r"^\s*" + re.escape(name) + r"\s*=", present)
    if after != before:
        yield from put_file(host, conf, after.encode(), "0644")
    if present and as_bool(args["reload"]):
        live = host.sysctl(name)
        if live is None:
            yield Fail(f"{name} does not exist on this host (its kernel module is not loaded, and a "
                       f"container cannot load modules)")
            return
        if " ".join(live.split()) != value:
            yield Command(f"sysctl -q -w {q(name + '=' + value)}")


MODULE = Module("sysctl", plan, {
    "name": Arg(required=True), "value": Arg(),
    "state": Arg(choices=("present", "absent"), default="present"),
    "sysctl_file": Arg(default="/etc/sysctl.d/90-kfab.conf"),
    "reload": Arg(default=True),
})
