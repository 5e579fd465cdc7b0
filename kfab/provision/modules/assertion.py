"""assert (every expression of `that` must be true) and fail (stop this host with a message), with
Ansible's messages and result fields."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Fail, Message, Module, Result, as_bool


def plan_assert(args, host, files):
    that = args["that"] if isinstance(args["that"], list) else [args["that"]]
    fail_msg = args["fail_msg"] if args["fail_msg"] is not None else args["msg"]
    for expression in that:
        if isinstance(expression, bool):
            ok = expression
        else:
            ok = bool(files.evaluate(str(expression)))
        if not ok:
            message = fail_msg if fail_msg is not None else "Assertion failed"
            yield Result({"assertion": expression, "evaluated_to": False, "msg": message})
            yield Fail(str(message))
            return
    message = args["success_msg"] if args["success_msg"] is not None else "All assertions passed"
    if not as_bool(args["quiet"]):
        yield Message(str(message))
    yield Result({"msg": message})


def plan_fail(args, host, files):
    message = args["msg"] if args["msg"] is not None else "Failed as requested from task"
    yield Result({"msg": message})
    yield Fail(str(message))


ASSERT = Module("assert", plan_assert, {
    "that": Arg(required=True), "fail_msg": Arg(), "msg": Arg(), "success_msg": Arg(), "quiet": Arg(default=False),
})
FAIL = Module("fail", plan_fail, {"msg": Arg()}, free_form="msg")
