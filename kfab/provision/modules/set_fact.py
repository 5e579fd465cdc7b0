"""set_fact: host variables set from a task (already templated by the runner), at the precedence of
registered results, as Ansible's set_fact."""

from __future__ import annotations

from kfab.provision.modules.base import Fail, Module, Result


def plan(args, host, files):
    facts = {k: v for k, v in args.items() if k != "cacheable"}
    bad = [k for k in facts if not str(k).isidentifier()]
    if bad:
        yield Fail(f"set_fact: {', '.join(repr(k) for k in bad)} is not a valid variable name")
        return
    if not facts:
        yield Fail("set_fact needs at least one variable")
        return
    yield Result({"ansible_facts": facts})


MODULE = Module("set_fact", plan, {}, any_args=True)
