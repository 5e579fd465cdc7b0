"""command and shell: run something, unless `creates` already exists or `unless` succeeds.
`command` passes its words as they are (no pipes, redirections or variables); `shell` runs /bin/sh -c.
Whether it counts as a change is the task's `changed_when` (default: it ran, so changed)."""

from __future__ import annotations

import shlex

from kfab.provision.modules.base import Arg, Command, Fail, Module, Result, q


def _plan(shell: bool):
    def plan(args, host, files):
        cmd = args["cmd"]
        if not cmd or not str(cmd).strip():
            yield Fail("no command given")
            return
        if args["creates"] and host.file(str(args["creates"])) is not None:
            yield Result({"skipped_reason": f"{args['creates']} exists"})
            return
        if args["removes"] and host.file(str(args["removes"])) is None:
            yield Result({"skipped_reason": f"{args['removes']} does not exist"})
            return
        if args["unless"] and host.succeeds(str(args["unless"])):
            yield Result({"skipped_reason": "'unless' command succeeded"})
            return
        if shell:
            line = f"/bin/sh -c {q(cmd)}"
        else:
            try:
                line = shlex.join(shlex.split(str(cmd)))
            except ValueError as exc:
                yield Fail(f"cannot split command: {exc}")
                return
        if args["chdir"]:
            line = f"cd {q(args['chdir'])} && {line}"
        result = yield Command(line)
        if result is not None:
            # Trailing newlines dropped, as Ansible does, so `when: out.stdout == "1"` reads naturally.
            stdout, stderr = result.stdout.rstrip("\n"), result.stderr.rstrip("\n")
            yield Result({"rc": result.rc, "stdout": stdout, "stderr": stderr,
                          "stdout_lines": stdout.splitlines(), "stderr_lines": stderr.splitlines()})
    return plan


ARGS = {"cmd": Arg(required=True), "creates": Arg(), "removes": Arg(), "unless": Arg(), "chdir": Arg()}
COMMAND = Module("command", _plan(False), dict(ARGS), free_form="cmd")
SHELL = Module("shell", _plan(True), dict(ARGS), free_form="cmd")
