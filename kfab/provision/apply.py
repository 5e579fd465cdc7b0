"""One module run on one host: drive the module's plan (read, compare, yield), apply what it yields —
or, in check mode, only collect it — and give back the outcome. Also how a task's values and
conditions are resolved against its variables, with errors that name where."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from kfab.provision.errors import ProvisionError
from kfab.provision.modules.base import Command, Diff, Fail, Message, Module, PutFile, Reboot, Result
from kfab.provision import searchpath
from kfab.provision.rebooting import reboot
from kfab.provision.roles import Role
from kfab.provision.templating import evaluate, render_file, render_value, search_environment
from kfab.provision.variables import HostVars

COMMAND_MODULES = ("command", "shell")


@dataclass
class Outcome:
    status: str                 # ok | changed | failed | skipped
    message: str | None = None
    result: dict = field(default_factory=dict)
    diffs: list = field(default_factory=list)
    commands: list = field(default_factory=list)


class RoleFiles:
    """Templates and files of the task's role, found on Ansible's search path (provision.searchpath: the role,
    the roles that included it, the task file's directory, the play file's templates/ or files/) and rendered
    with the task's variables."""

    def __init__(self, role: Role, variables: HostVars, stack: list[Path] | None = None):
        self.role = role
        self.variables = variables
        self.stack = stack if stack is not None else role.search_stack()
        self.play_dir = role.play_dir or role.path

    def find(self, kind: str, src: str) -> Path:
        """The file `src` of kind templates|files; ProvisionError naming every path searched."""
        return searchpath.find(self.stack, self.play_dir, kind, src)

    def render_template(self, src: str) -> str:
        path = self.find("templates", src)
        env = search_environment(tuple(searchpath.jinja_search_path(self.stack, self.play_dir, path)))
        try:
            return render_file(env, str(path), self.variables)
        except jinja2.TemplateError as exc:
            line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                         if f.filename == str(path)), None)
            kind = "" if isinstance(exc, jinja2.UndefinedError) else f"{type(exc).__name__}: "
            raise ProvisionError(f"{kind}{exc.message}", file=str(path), line=line) from None

    def read_file(self, src: str) -> bytes:
        path = self.find("files", src)
        if not path.is_file():
            raise ProvisionError(f"'{src}' is a directory ({path}): copy takes a file")
        return path.read_bytes()

    def local_files(self, directory: str, suffix: str = "") -> dict[str, bytes]:
        """Files of a directory on this machine (absolute, or on the search path like copy's src)."""
        path = self.find("files", directory)
        if not path.is_dir():
            raise ProvisionError(f"directory {path} not found")
        return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file() and f.name.endswith(suffix)}

    def evaluate(self, expression: str):
        """A bare expression (assert's `that`, debug's `var`) against the task's variables."""
        try:
            return evaluate(expression, self.variables)
        except jinja2.UndefinedError as exc:
            raise ProvisionError(f"{expression!r}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise ProvisionError(f"{expression!r}: {exc}") from None


def apply_module(module: Module, args: dict, remote, files: RoleFiles, check: bool) -> Outcome:
    """Run the module's plan against the host: commands and uploads are applied (or, in check mode,
    collected), a Fail ends it. command/shell's exit code is judged by the caller (failed_when)."""
    out = Outcome("ok")
    messages: list[str] = []
    plan = module.plan(args, remote, files)
    reply = None
    try:
        while True:
            change = plan.send(reply)
            reply = None
            if isinstance(change, Fail):
                return Outcome("failed", change.message, out.result, out.diffs, out.commands)
            if isinstance(change, Diff):
                out.diffs.append(change)
            elif isinstance(change, Result):
                out.result.update(change.data)
            elif isinstance(change, Message):
                messages.append(change.text)
            elif isinstance(change, Command):
                if change.once and change.once in remote.done_once:
                    continue
                if change.changes:
                    out.status = "changed"
                if check:
                    if change.changes:
                        out.commands.append((change.cmd, None))
                    continue
                reply = remote.run(change.cmd)
                out.commands.append((change.cmd, reply))
                if change.once:
                    remote.done_once.add(change.once)
                if change.daemon_reload and reply.rc == 0:
                    remote.unit_files_changed = False
                if reply.rc != 0 and module.name not in COMMAND_MODULES:
                    return Outcome("failed", _command_failed(change.cmd, reply), out.result, out.diffs,
                                   out.commands)
            elif isinstance(change, Reboot):
                if check and not remote.is_local:
                    # Ansible's check mode: reported as a reboot, nothing run.
                    out.status, out.result = "changed", out.result | {"rebooted": True, "elapsed": 0}
                    continue
                failed, data, message = reboot(remote, change)
                out.result.update(data)
                if failed:
                    return Outcome("failed", message, out.result, out.diffs, out.commands)
                out.status = "changed"
                messages.append(f"rebooted: back after {data['elapsed']} s")   # Ansible's `elapsed`, shown
                out.commands.append((f"{change.binary} {change.arguments}".rstrip(), None))
            elif isinstance(change, PutFile):
                out.status = "changed"
                what = f"put {change.path} (mode {change.mode or '0644'})"
                if check:
                    out.commands.append((what, None))
                    remote.unit_files_changed |= change.path.startswith(("/etc/systemd/", "/lib/systemd/"))
                    continue
                result = remote.put(change)
                out.commands.append((what, result))
                if result.rc != 0:
                    return Outcome("failed", f"writing {change.path} failed: "
                                   f"{result.stderr.strip() or result.stdout.strip()}",
                                   out.result, out.diffs, out.commands)
    except StopIteration:
        pass
    except ProvisionError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:
        return Outcome("failed", str(exc), out.result, out.diffs, out.commands)
    finally:
        plan.close()
    if messages:
        out.message = "\n".join(messages)
    if module.name in COMMAND_MODULES:
        if out.status == "changed" and check:
            # Commands are not run in check mode (as Ansible does); we cannot know what they would do.
            # Registered, the result is {skipped: true} without stdout (as Ansible's).
            return Outcome("skipped", "check mode: command not run", {"skipped": True,
                           "msg": "Command would have run if not in check mode"}, out.diffs, out.commands)
        out.result.setdefault("cmd", args.get("cmd"))
    return out


def command_failed(out: Outcome) -> bool:
    """command/shell fail on a non-zero exit code unless failed_when says otherwise."""
    return "rc" in out.result and out.result["rc"] != 0


def command_message(out: Outcome) -> str:
    stderr = str(out.result.get("stderr", "")).strip().splitlines()
    return f"non-zero return code {out.result['rc']}" + (f": {stderr[-1]}" if stderr else "")


def _command_failed(cmd: str, result) -> str:
    detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"command failed (exit code {result.rc}): {cmd}" + (f": {detail[-1]}" if detail else "")


def resolve(value, variables: HostVars, where: dict):
    try:
        return render_value(value, variables)
    except jinja2.UndefinedError as exc:
        raise ProvisionError(exc.message or "undefined variable", **where) from None
    except jinja2.TemplateError as exc:
        raise ProvisionError(f"template error: {exc}", **where) from None
    except ProvisionError as exc:
        raise exc.located(**where) from None


def condition(expressions, variables: HostVars, where: dict) -> bool:
    """when/changed_when/failed_when/until: a list is true when every item is (Ansible ANDs them)."""
    for expression in expressions if isinstance(expressions, list) else [expressions]:
        if not _one_condition(expression, variables, where):
            return False
    return True


def _one_condition(expression, variables: HostVars, where: dict) -> bool:
    if isinstance(expression, bool):
        return expression
    try:
        value = evaluate(str(expression), variables)
    except jinja2.UndefinedError as exc:
        raise ProvisionError(f"condition {expression!r}: {exc.message}", **where) from None
    except jinja2.TemplateError as exc:
        raise ProvisionError(f"condition {expression!r}: {exc}", **where) from None
    except ProvisionError as exc:
        raise exc.located(**where) from None
    if isinstance(value, str):
        # `when: "{{ flag }}"` with flag "false" (a string from -e) is false, as Ansible's bool conversion.
        return value.strip().lower() not in ("", "false", "no", "off", "0", "n", "none")
    return bool(value)
