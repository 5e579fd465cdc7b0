"""wait_for: wait (on the host) until a TCP port accepts connections or a path exists — or, with
state stopped/absent, until it no longer does."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Fail, Module


def plan(args, host, files):
    if (args["port"] is None) == (args["path"] is None):
        yield Fail("wait_for needs exactly one of 'port' or 'path'")
        return
    present = args["state"] in ("started", "present")
    if args["port"] is not None:
        try:
            port = int(args["port"])
        except (TypeError, ValueError):
            yield Fail(f"port must be a number, got {args['port']!r}")
            return
        what = f"tcp:{args['host']}:{port}"
    else:
        what = f"path:{args['path']}"
    timeout = float(args["timeout"])
    if not host.wait_for(what, timeout, present):
        target = what.split(":", 1)[1]
        yield Fail(f"timed out after {timeout:g}s waiting for {target} to "
                   f"{'appear' if present else 'go away'}")


MODULE = Module("wait_for", plan, {
    "port": Arg(), "path": Arg(), "host": Arg(default="127.0.0.1"),
    "state": Arg(choices=("started", "present", "stopped", "absent"), default="started"),
    "timeout": Arg(default=300),
})
