"""kfab_install: this very kfab (the sources `kfab up` runs from) in a venv on the host.

The wheelhouse — kfab and every dependency as wheels — is built on the control machine by
kfab.install.wheelhouse (cached by content: a second run reuses it), then installed like the `venv`
module does it, with `pip --no-index`: hosts never need PyPI. Same sources again -> `ok`.
`wheelhouse`: use this prebuilt wheelhouse directory instead (e.g. one built once for a whole rollout, so that
edits to the sources during the run do not make hosts differ).
"""

from __future__ import annotations

import threading

from kfab.provision.modules import venv
from kfab.provision.modules.base import Arg, Fail, Module

_build_lock = threading.Lock()   # hosts run in threads; build the wheelhouse once


def plan(args, host, files):
    from kfab.install.wheelhouse import WheelhouseError, build
    wheelhouse = args["wheelhouse"]
    if not wheelhouse:
        try:
            with _build_lock:
                wheelhouse = build()
        except WheelhouseError as exc:
            yield Fail(str(exc))
            return
    yield from venv.plan({"path": args["path"], "wheelhouse": str(wheelhouse), "packages": ["kfab"],
                          "python": args["python"]}, host, files)


MODULE = Module("kfab_install", plan, {"path": Arg(default="/opt/kfab/venv"), "python": Arg(default="python3"),
                                       "wheelhouse": Arg()},
                doc="install the running kfab (from a wheelhouse built here) into a venv on the host")
