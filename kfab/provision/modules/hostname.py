"""hostname: the host's name, now (the kernel's) and at boot (/etc/hostname)."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Module, put_file, q


def plan(args, host, files):
    name = str(args["name"]).strip()
    yield from put_file(host, "/etc/hostname", f"{name}\n".encode(), "0644")
    if host.current_hostname() != name:
        yield Command(f"hostname {q(name)}")


MODULE = Module("hostname", plan, {"name": Arg(required=True)})
