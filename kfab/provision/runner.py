"""The runner: one Fabric connection per host, hosts in parallel (forks), tasks in order per host,
a failed host stops there while the others go on, handlers once at the end of a play."""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import paramiko

from kfab.provision.context import RunVars, resolve_path
from kfab.provision.errors import HostUnreachable, ProvisionError
from kfab.provision.facts import gather
from kfab.provision.inventory import Inventory
from kfab.provision.modules.base import Command, Diff, Fail, PutFile, Result
from kfab.provision.output import HostStats, Output
from kfab.provision.playbook import Play, RoleRef
from kfab.provision.remote import RemoteHost
from kfab.provision.roles import Role, Task
from kfab.provision.ssh import Target, connect
from kfab.provision.templating import evaluate, render_file, render_value
from kfab.provision.variables import HostVars

COMMAND_MODULES = ("command", "shell")


@dataclass
class Options:
    check: bool = False
    diff: bool = False
    verbose: int = 0
    forks: int = 10
    fail_fast: bool = False
    limit: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class Outcome:
    status: str                 # ok | changed | failed | skipped
    message: str | None = None
    result: dict = field(default_factory=dict)
    diffs: list = field(default_factory=list)
    commands: list = field(default_factory=list)


class RoleFiles:
    """Templates and files of the task's role, rendered with the task's variables."""

    def __init__(self, role: Role, variables: HostVars):
        self.role = role
        self.variables = variables

    def render_template(self, src: str) -> str:
        path = self.role.find_template(src)
        if path is None:
            raise ProvisionError(f"template '{src}' not found")
        try:
            return render_file(self.role.template_env, src, self.variables)
        except jinja2.TemplateError as exc:
            line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                         if f.filename == str(path)), None)
            kind = "" if isinstance(exc, jinja2.UndefinedError) else f"{type(exc).__name__}: "
            raise ProvisionError(f"{kind}{exc.message}", file=str(path), line=line) from None

    def read_file(self, src: str) -> bytes:
        path = self.role.find_file(src)
        if path is None:
            raise ProvisionError(f"file '{src}' not found" + (
                "" if Path(src).is_absolute() else f" in {self.role.path / 'files'}"))
        return path.read_bytes()

    def local_files(self, directory: str, suffix: str = "") -> dict[str, bytes]:
        """Files of a directory on this machine (absolute, or relative to the role's files/)."""
        path = Path(directory) if Path(directory).is_absolute() else self.role.path / "files" / directory
        if not path.is_dir():
            raise ProvisionError(f"directory {path} not found")
        return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file() and f.name.endswith(suffix)}


class Runner:
    def __init__(self, inventory: Inventory, plays: list[Play], extra_vars: dict, options: Options,
                 output: Output):
        self.inventory = inventory
        self.plays = plays
        self.options = options
        self.output = output
        self.vars = RunVars(inventory, extra_vars, check=options.check)
        self.hosts = inventory.select(options.limit) if options.limit else list(inventory.hosts)
        self.stats = {h: HostStats() for h in self.hosts}
        self.remotes: dict[str, RemoteHost] = {}
        self.dead: set[str] = set()
        self.stop = threading.Event()
        self.next_steps: list[str] = []   # what modules tell the user to do after a good run (admin kubeconfig)

    def run(self) -> int:
        try:
            for play in self.plays:
                if self.stop.is_set():
                    break
                hosts = [h for h in self.inventory.select(play.hosts) if h in self.stats and h not in self.dead]
                self.output.play(play.name, hosts)
                with ThreadPoolExecutor(max_workers=max(1, self.options.forks)) as pool:
                    try:
                        list(pool.map(lambda h: self._play_host(play, h), hosts))
                    except KeyboardInterrupt:
                        # Hosts finish the task they are in (never half a file) and stop there.
                        self.stop.set()
                        raise
        finally:
            for remote in self.remotes.values():
                remote.close()
        failed = any(s.failed or s.unreachable for s in self.stats.values())
        if self.next_steps and not failed and not self.options.check:
            self.output.note("\n".join(dict.fromkeys(self.next_steps)))
        self.output.recap(self.stats)
        if any(s.unreachable for s in self.stats.values()):
            return 4
        return 2 if any(s.failed for s in self.stats.values()) else 0

    # ---- one host, one play --------------------------------------------------------------------------
    def _play_host(self, play: Play, host: str) -> None:
        try:
            self._play_host_tasks(play, host)
        except HostUnreachable as exc:
            self.stats[host].unreachable += 1
            self.dead.add(host)
            self.output.result(host, "connect", "unreachable", str(exc))
            self._maybe_stop()
        except Exception as exc:  # a bug must not leave the other hosts' threads hanging
            self.stats[host].failed += 1
            self.dead.add(host)
            self.output.result(host, "internal error", "failed", f"{type(exc).__name__}: {exc}")
            self._maybe_stop()
        finally:
            self.output.host_done(host)

    def _play_host_tasks(self, play: Play, host: str) -> None:
        remote = self._remote(play, host)
        notified: set[str] = set()
        for ref in play.roles:
            for task in ref.role.tasks:
                if self.stop.is_set():
                    return
                if not self._tagged(play, ref, task):
                    continue
                outcome = self._task(play, ref, task, host, remote)
                if outcome.status == "failed":
                    return
                if outcome.status == "changed":
                    notified.update(task.notify)
        # Handlers run once, in the order they are defined, and only on hosts that got this far.
        for name, handler in play.handlers().items():
            if name in notified and not self.stop.is_set():
                ref = next(r for r in play.roles if r.role is handler.role)
                if self._task(play, ref, handler, host, remote, handler=True).status == "failed":
                    return

    def _remote(self, play: Play, host: str) -> RemoteHost:
        if host in self.remotes:
            return self.remotes[host]
        self.output.task_start(host, "connecting")
        variables = self.vars.host_vars(host, play)
        try:
            target = self._target(host, variables)
        except ProvisionError as exc:
            raise HostUnreachable(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise HostUnreachable(f"bad connection variable (ansible_port, kfab_ssh_timeout): {exc}") from None
        conn = connect(target)
        remote = RemoteHost(host, conn, check=self.options.check)
        self.remotes[host] = remote
        self.output.task_start(host, "gathering facts")
        try:
            self.vars.facts[host] = gather(remote)
        except (paramiko.SSHException, OSError, EOFError, RuntimeError) as exc:
            raise HostUnreachable(f"gathering facts failed: {exc}") from None
        return remote

    def _target(self, host: str, v: HostVars) -> Target:
        base = self.inventory.path.parent
        key = v.get("ansible_ssh_private_key_file")
        return Target(
            name=host, address=str(v.get("ansible_host", host)), port=int(v.get("ansible_port", 22)),
            user=str(v.get("ansible_user", "root")), key_file=resolve_path(key, base) if key else None,
            known_hosts=resolve_path(v.get("kfab_known_hosts_file", "~/.ssh/known_hosts"), base),
            host_key_checking=str(v.get("kfab_host_key_checking", "strict")),
            timeout=float(v.get("kfab_ssh_timeout", 10)))

    def _tagged(self, play: Play, ref: RoleRef, task: Task) -> bool:
        if not self.options.tags:
            return True
        tags = set(task.tags) | set(ref.tags) | set(play.tags)
        return "always" in tags or bool(tags & set(self.options.tags))

    def _maybe_stop(self) -> None:
        if self.options.fail_fast:
            self.stop.set()

    # ---- one task on one host ------------------------------------------------------------------------
    def _task(self, play: Play, ref: RoleRef, task: Task, host: str, remote: RemoteHost,
              handler: bool = False) -> Outcome:
        label = ("handler " if handler else "") + task.label
        self.output.task_start(host, label)
        variables = self.vars.host_vars(host, play, ref)
        if task.vars:
            variables = variables.scoped(f"{task.file} (task vars)", task.vars)
        try:
            outcome = self._task_outcome(play, task, variables, remote, host, label)
        except ProvisionError as exc:
            # The result line already names host and task; the message adds file and line.
            exc.host = exc.task = None
            outcome = Outcome("failed", str(exc.located(file=task.file, line=task.line)))
        except HostUnreachable:
            raise
        except (paramiko.SSHException, EOFError, ConnectionError) as exc:
            raise HostUnreachable(f"connection lost during task '{task.label}': {exc}") from None
        if outcome.status == "failed" and task.ignore_errors:
            self.output.result(host, label, "failed", (outcome.message or "") + " (ignored)")
            outcome.status = "ok"
        else:
            # A loop's items were reported one by one; its summary line needs no repeated message.
            message = None if task.loop is not None and outcome.status == "failed" else outcome.message
            self.output.result(host, label, outcome.status, message,
                               diffs=outcome.diffs if self.options.diff else (), commands=outcome.commands)
        setattr(self.stats[host], outcome.status, getattr(self.stats[host], outcome.status) + 1)
        self.next_steps.extend(outcome.result.get("next_steps") or [])
        if task.register:
            self.vars.registered[host][task.register] = outcome.result | {
                "changed": outcome.status == "changed", "failed": outcome.status == "failed",
                "skipped": outcome.status == "skipped"}
        if outcome.status == "failed":
            self.dead.add(host)
            self._maybe_stop()
        return outcome

    def _task_outcome(self, play, task, variables, remote, host, label) -> Outcome:
        where = {"file": task.file, "line": task.line, "host": host, "task": task.label}
        for condition in task.when:
            if not _condition(condition, variables, where):
                return Outcome("skipped")
        if task.loop is None:
            return self._module(play, task, variables, remote)
        items = _resolve(task.loop, variables, where)
        if not isinstance(items, list):
            raise ProvisionError(f"loop must be a list, got {type(items).__name__}", **where)
        results, changed = [], False
        for item in items:
            scoped = variables.scoped("loop item", {"item": item})
            outcome = self._module(play, task, scoped, remote)
            results.append(outcome.result | {"item": item, "changed": outcome.status == "changed"})
            if outcome.status != "ok" or outcome.diffs:
                self.output.result(host, label, outcome.status, outcome.message, item=item,
                                   diffs=outcome.diffs if self.options.diff else (), commands=outcome.commands)
            if outcome.status == "failed":
                return Outcome("failed", outcome.message, {"results": results})
            changed = changed or outcome.status == "changed"
        return Outcome("changed" if changed else "ok", None, {"results": results})

    def _module(self, play: Play, task: Task, variables: HostVars, remote: RemoteHost) -> Outcome:
        where = {"file": task.file, "line": task.line, "task": task.label}
        args = task.module.with_defaults(_resolve(task.args, variables, where))
        remote.become = bool(play.become if task.become is None else _resolve(task.become, variables, where))
        check = self.options.check
        out = Outcome("ok")
        plan = task.module.plan(args, remote, RoleFiles(task.role, variables))
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
                elif isinstance(change, Command):
                    if change.once and change.once in remote.done_once:
                        continue
                    out.status = "changed"
                    if check:
                        out.commands.append((change.cmd, None))
                        continue
                    reply = remote.run(change.cmd)
                    out.commands.append((change.cmd, reply))
                    if change.once:
                        remote.done_once.add(change.once)
                    if change.daemon_reload and reply.rc == 0:
                        remote.unit_files_changed = False
                    if reply.rc != 0 and task.module.name not in COMMAND_MODULES:
                        return Outcome("failed", _command_failed(change.cmd, reply), out.result, out.diffs,
                                       out.commands)
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
        if task.module.name in COMMAND_MODULES:
            return self._command_outcome(task, variables, out, check)
        return self._override(task, variables, out)

    def _command_outcome(self, task: Task, variables: HostVars, out: Outcome, check: bool) -> Outcome:
        if out.status == "changed" and check:
            # Commands are not run in check mode (as Ansible does); we cannot know what they would do.
            out.status, out.message = "skipped", "check mode: command not run"
            return out
        if "rc" in out.result and out.result["rc"] != 0 and task.failed_when is None:
            out.status = "failed"
            stderr = out.result["stderr"].strip().splitlines()
            out.message = f"exit code {out.result['rc']}" + (f": {stderr[-1]}" if stderr else "")
            return out
        return self._override(task, variables, out)

    def _override(self, task: Task, variables: HostVars, out: Outcome) -> Outcome:
        if task.changed_when is None and task.failed_when is None:
            return out
        result = out.result | {"changed": out.status == "changed"}
        scope = variables.scoped("this task's result", {task.register: result} if task.register else {})
        where = {"file": task.file, "line": task.line, "task": task.label}
        if task.failed_when is not None and _condition(task.failed_when, scope, where):
            out.status, out.message = "failed", f"failed_when is true: {task.failed_when}"
            return out
        if task.changed_when is not None and out.status != "failed":
            out.status = "changed" if _condition(task.changed_when, scope, where) else "ok"
        return out


def _command_failed(cmd: str, result) -> str:
    detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"command failed (exit code {result.rc}): {cmd}" + (f": {detail[-1]}" if detail else "")


def _resolve(value, variables: HostVars, where: dict):
    try:
        return render_value(value, variables)
    except jinja2.UndefinedError as exc:
        raise ProvisionError(exc.message or "undefined variable", **where) from None
    except jinja2.TemplateError as exc:
        raise ProvisionError(f"template error: {exc}", **where) from None
    except ProvisionError as exc:
        raise exc.located(**where)


def _condition(expression, variables: HostVars, where: dict) -> bool:
    if isinstance(expression, bool):
        return expression
    try:
        return bool(evaluate(str(expression), variables))
    except jinja2.UndefinedError as exc:
        raise ProvisionError(f"condition {expression!r}: {exc.message}", **where) from None
    except jinja2.TemplateError as exc:
        raise ProvisionError(f"condition {expression!r}: {exc}", **where) from None
    except ProvisionError as exc:
        raise exc.located(**where)
