"""debug: show a message (`msg`) or a variable's value (`var`, an expression as in Ansible)."""

from __future__ import annotations

import json

from kfab.provision.modules.base import Arg, Fail, Message, Module, Result


def plan(args, host, files):
    if args["msg"] is not None and args["var"] is not None:
        yield Fail("debug takes 'msg' or 'var', not both")
        return
    if args["var"] is not None:
        name = str(args["var"])
        value = files.evaluate(name)
        yield Message(f"{name} = {_show(value)}")
        yield Result({name: value})
        return
    msg = "Hello world!" if args["msg"] is None else args["msg"]
    yield Message(_show(msg))
    yield Result({"msg": msg})


def _show(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


MODULE = Module("debug", plan, {"msg": Arg(), "var": Arg(), "verbosity": Arg(default=0)}, free_form="msg")
