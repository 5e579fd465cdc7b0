"""One play on one host: walk the task tree (blocks with rescue/always, includes, meta), run each task with
Ansible's keywords — `when` per loop item, loop_control, until/retries, register, changed_when/
failed_when (lists ANDed), ignore_errors, check_mode, delegate_to, run_once, notify/listen — and the
handlers at `meta: flush_handlers` and at the end of the play."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import paramiko

from kfab.provision.apply import (COMMAND_MODULES, Outcome, RoleFiles, apply_module, command_failed,
                                  command_message, condition, resolve)
from kfab.provision.errors import HostUnreachable, ProvisionError
from kfab.provision.inventory import Layer
from kfab.provision.modules.base import as_bool
from kfab.provision.playbook import Play, RoleRef
from kfab.provision.remote import BECOME_METHODS
from kfab.provision.roles import Block, Include, Keywords, Task
from kfab.provision.secrets import secret_values
from kfab.provision.templating import OMIT
from kfab.provision.variables import HostVars


class EndHost(Exception):
    """`meta: end_host`: this host stops the play here, without failing."""


@dataclass(frozen=True)
class Scope:
    """What the enclosing blocks, includes and role give the tasks inside them."""
    ref: RoleRef
    when: tuple = ()                       # inherited conditions, evaluated per task (as Ansible)
    tags: frozenset = frozenset()
    scopes: tuple = ()                     # block and task vars layers
    params: tuple = ()                     # include vars (and loop items of includes)
    keywords: Keywords = Keywords()
    includers: tuple = ()                  # roles that included or depend on the role (its search path)


@dataclass
class Failure:
    task: Task
    result: dict = field(default_factory=dict)


class HostPlay:
    def __init__(self, runner, play: Play, host: str):
        self.runner = runner
        self.play = play
        self.host = host
        self.notified: set[str] = set()
        self.failure: Failure | None = None

    # ---- the tree ----------------------------------------------------------------------------------
    def run(self) -> bool:
        """False when the host failed (and stays out of the rest of the run)."""
        if self.play.gather_facts:
            self.runner.count(self.host, "ok")    # Ansible's "Gathering Facts" task, ok on every host it reached
        try:
            section = None
            for ref in self.play.roles:
                # Handlers run after pre_tasks, after roles and tasks, and after post_tasks (Ansible's order).
                if section is not None and ref.section != section and {section, ref.section} != {"roles", "tasks"}:
                    if not self.flush_handlers():
                        return False
                section = ref.section
                scope = Scope(ref, when=tuple(ref.when), tags=frozenset(ref.tags) | frozenset(self.play.tags),
                              includers=ref.dependents)
                if not self.nodes(ref.role.tasks, scope):
                    return False
            return self.flush_handlers()
        except EndHost:
            return True

    def nodes(self, nodes: list, scope: Scope) -> bool:
        for node in nodes:
            if self.runner.stop.is_set():
                return False
            if isinstance(node, Block):
                ok = self.block(node, scope)
            elif isinstance(node, Include):
                ok = self.include(node, scope)
            else:
                ok = self.task(node, scope)
            if not ok:
                return False
        return True

    def block(self, block: Block, scope: Scope) -> bool:
        inner = replace(scope, when=scope.when + tuple(block.when), tags=scope.tags | frozenset(block.tags),
                        scopes=scope.scopes + ((Layer(f"{block.file} (block vars)", block.vars),)
                                               if block.vars else ()),
                        keywords=block.keywords.over(scope.keywords))
        ok = self.nodes(block.block, inner)
        if not ok and block.rescue and self.failure is not None and not self.runner.stop.is_set():
            stats = self.runner.stats[self.host]
            stats.failed -= 1
            stats.rescued += 1
            failed = self.failure
            self.failure = None
            rescue_vars = Layer("rescue", {"ansible_failed_task": {"name": failed.task.name,
                                                                   "action": failed.task.module.name},
                                           "ansible_failed_result": failed.result})
            ok = self.nodes(block.rescue, replace(inner, params=inner.params + (rescue_vars,)))
        if block.always and (self.failure is not None or ok) and not self.runner.stop.is_set():
            pending, self.failure = self.failure, None
            always_ok = self.nodes(block.always, inner)
            self.failure = self.failure or pending
            ok = ok and always_ok
        return ok

    def include(self, node: Include, scope: Scope) -> bool:
        tags = scope.tags | frozenset(node.tags)
        if not self.runner.tagged(tags):
            return True
        ref = scope.ref if node.target is None else RoleRef(node.target, {}, list(tags))
        where = {"file": node.file, "line": node.line, "host": self.host, "task": node.label}
        variables = self.variables(scope)
        inner = replace(scope, ref=ref, tags=tags, keywords=node.keywords.over(scope.keywords))
        if node.target is not None:
            # The included role's defaults and vars replace the including role's; its conditions stay. It
            # finds files in the including role too (after its own), as in Ansible.
            inner = replace(inner, scopes=(), includers=(() if scope.ref.role.of_play else (scope.ref.role.path,))
                            + scope.includers)
        if node.kind.startswith("import_"):
            # A static import is its tasks: its `when` goes to each of them (skipped ones count, as in Ansible).
            return self.nodes(node.body, replace(inner, params=scope.params + (
                (Layer(f"{node.file} ({node.kind} vars)", dict(node.vars)),) if node.vars else ()),
                when=tuple(scope.when) + tuple(node.when)))
        if node.loop is None and not condition(list(scope.when) + node.when, variables, where):
            # A dynamic include whose condition is false is one skipped task in the recap.
            self.runner.output.result(self.host, node.label, "skipped")
            self.runner.count(self.host, "skipped")
            self.runner.report.task(self.host, node.label, "skipped", Outcome("skipped"), 0.0)
            return True
        items = [None] if node.loop is None else loop_items(node.loop, variables, where)
        loop_var = str(node.loop_control.get("loop_var", "item"))
        for index, item in enumerate(items):
            layer_vars = dict(node.vars)
            if node.loop is not None:
                layer_vars |= {loop_var: item, "ansible_loop_var": loop_var}
                if node.loop_control.get("index_var"):
                    layer_vars[str(node.loop_control["index_var"])] = index
            params = scope.params + ((Layer(f"{node.file} ({node.kind} vars)", layer_vars),) if layer_vars else ())
            item_vars = self.variables(replace(scope, params=params))
            if not condition(list(scope.when) + node.when, item_vars, where):
                continue
            self.runner.count(self.host, "ok")    # each file included (per loop item) is ok in Ansible's recap
            # The include's own `when` was just evaluated; the tasks inside do not inherit it (a dynamic
            # include's conditions apply to the include, as in Ansible).
            if not self.nodes(node.body, replace(inner, params=params, when=())):
                return False
        return True

    # ---- one task ----------------------------------------------------------------------------------
    def variables(self, scope: Scope, task: Task | None = None) -> HostVars:
        scopes = scope.scopes
        if task is not None and task.vars:
            scopes += (Layer(f"{task.file} (task vars)", task.vars),)
        stack = task.role.search_stack(task.file, scope.includers) if task is not None else None
        return self.runner.vars.host_vars(self.host, self.play, scope.ref, scopes=scopes, params=scope.params,
                                          stack=stack)

    def task(self, task: Task, scope: Scope, handler: bool = False) -> bool:
        tags = scope.tags | frozenset(task.tags)
        if not handler and not self.runner.tagged(tags):
            return True
        if task.meta is not None:
            return self.meta(task, scope)
        label = ("handler " if handler else "") + task.label
        runner = self.runner
        started = time.monotonic()
        runner.output.task_start(self.host, label)
        variables = self.variables(scope, task)
        where = {"file": task.file, "line": task.line, "task": task.label}
        try:
            if as_bool(resolve(task.run_once, variables, where)):
                outcome, ran_here = runner.once(self.play, task, self.host,
                                                lambda: self.execute(task, scope, variables, label))
            else:
                outcome, ran_here = self.execute(task, scope, variables, label), True
        except ProvisionError as exc:
            # The result line already names host and task; the message adds file and line.
            exc.host = exc.task = None
            outcome, ran_here = Outcome("failed", str(exc.located(file=task.file, line=task.line))), True
        except HostUnreachable:
            raise
        except (paramiko.SSHException, EOFError, ConnectionError) as exc:
            raise HostUnreachable(f"connection lost during task '{task.label}': {exc}") from None
        self.record(task, scope, variables, outcome)
        keywords = task.keywords.over(scope.keywords)
        ignored = outcome.status == "failed" and as_bool(resolve(_first(keywords.ignore_errors, False), variables,
                                                                 where))
        if not ran_here:
            # run_once: the host that ran it reported and counted it; its failure ends the batch's other
            # hosts too, uncounted (ansible-core 2.18 leaves them out of the recap the same way).
            if outcome.status == "failed" and not ignored:
                self.failure = Failure(task, outcome.result | {"msg": outcome.message})
                return False
            return True
        status = "ignored" if ignored else outcome.status
        shown = self.printable(task, variables, where, outcome)
        if ignored:
            runner.output.result(self.host, label, "failed", (shown.message or "") + " (ignored)")
        else:
            # A loop's items were reported one by one; its summary line needs no repeated message.
            message = None if task.loop is not None and outcome.status == "failed" else shown.message
            show_diff = runner.options.diff if task.diff is None else as_bool(resolve(task.diff, variables, where))
            runner.output.result(self.host, label, outcome.status, message,
                                 diffs=shown.diffs if show_diff else (), commands=shown.commands)
        runner.count(self.host, status)
        runner.report.task(self.host, label, status, shown, time.monotonic() - started)
        runner.next_steps.extend(outcome.result.get("next_steps") or [])   # e.g. where the admin kubeconfig is
        if outcome.status == "changed":
            self.notified.update(task.notify)
        if outcome.status == "failed" and not ignored:
            self.failure = Failure(task, outcome.result | {"msg": outcome.message})
            if as_bool(resolve(_first(keywords.any_errors_fatal, self.play.any_errors_fatal), variables, where)):
                runner.output.note(f"any_errors_fatal: {self.host} failed '{task.label}', every host stops")
                runner.stop.set()
            return False
        return True

    def printable(self, task: Task, variables: HostVars, where: dict, outcome: Outcome) -> Outcome:
        """The outcome as it may be shown: secret-named variables' values masked, all of it under no_log."""
        masker = self.runner.output.masker
        masker.learn(secret_values(variables))
        no_log = task.no_log is not None and as_bool(resolve(task.no_log, variables, where))
        return masker.outcome(outcome, no_log)

    def record(self, task: Task, scope: Scope, variables: HostVars, outcome: Outcome) -> None:
        """register and set_fact, as Ansible: a registered failure says failed: true (so `is failed` works
        after ignore_errors), a skipped task's result has skipped: true and nothing else."""
        registered = self.runner.vars.registered.setdefault(self.host, {})
        facts = outcome.result.get("ansible_facts")
        if facts and outcome.status != "failed":
            registered.update(facts)
        if task.register:
            result = {k: v for k, v in outcome.result.items() if k != "ansible_facts"}
            result |= {"changed": outcome.status == "changed", "failed": outcome.status == "failed"}
            if outcome.status == "skipped":
                result["skipped"] = True
            if outcome.status == "failed" and outcome.message and "msg" not in result:
                result["msg"] = outcome.message
            registered[task.register] = result

    def execute(self, task: Task, scope: Scope, variables: HostVars, label: str) -> Outcome:
        """when, loop (when per item), and the module with until/retries and changed_when/failed_when."""
        where = {"file": task.file, "line": task.line, "host": self.host, "task": task.label}
        conditions = list(scope.when) + task.when
        if task.loop is None:
            if not condition(conditions, variables, where):
                return Outcome("skipped", result={"skipped": True, "skip_reason": "Conditional result was False"})
            return self.attempts(task, scope, variables, label)
        items = loop_items(task.loop, variables, where)
        control = {k: v for k, v in task.loop_control.items()}
        loop_var = str(control.get("loop_var", "item"))
        results, statuses = [], []
        for index, item in enumerate(items):
            item_vars = {loop_var: item, "ansible_loop_var": loop_var}
            if control.get("index_var"):
                item_vars[str(control["index_var"])] = index
            scoped = variables.scoped("loop item", item_vars)
            shown = resolve(control["label"], scoped, where) if "label" in control else item
            if not condition(conditions, scoped, where):
                results.append({"skipped": True, "changed": False, loop_var: item, "ansible_loop_var": loop_var})
                statuses.append("skipped")
                continue
            outcome = self.attempts(task, scope, scoped, label)
            results.append(outcome.result | {loop_var: item, "ansible_loop_var": loop_var,
                                             "changed": outcome.status == "changed",
                                             "failed": outcome.status == "failed"})
            statuses.append(outcome.status)
            if outcome.status != "ok" or outcome.diffs or outcome.message:
                printed = self.printable(task, scoped, where, outcome)
                self.runner.output.result(self.host, label, outcome.status, printed.message, item=shown,
                                          diffs=printed.diffs if self.runner.options.diff else (),
                                          commands=printed.commands)
        # A failed item does not stop the loop (Ansible runs the remaining items, then fails the task).
        summary = {"results": results, "msg": "All items completed"}
        if statuses and all(s == "skipped" for s in statuses) or not statuses:
            return Outcome("skipped", result=summary | {"skipped": True})
        if "failed" in statuses:
            return Outcome("failed", "One or more items failed", summary | {"msg": "One or more items failed"})
        return Outcome("changed" if "changed" in statuses else "ok", None, summary)

    def attempts(self, task: Task, scope: Scope, variables: HostVars, label: str) -> Outcome:
        """The module once, or until `until` holds: 1 + retries runs (retries 3 and delay 5 s unless given),
        as ansible-core 2.18 (checked with ansible-playbook), whose result then says attempts = retries."""
        if not task.until:
            return self.module(task, scope, variables)
        where = {"file": task.file, "line": task.line, "host": self.host, "task": task.label}
        retries = resolve(task.retries, variables, where)
        attempts = 4 if retries is None else max(1, int(retries) + 1)
        delay = float(resolve(task.delay, variables, where) if task.delay is not None else 5)
        outcome = Outcome("failed")
        for attempt in range(1, attempts + 1):
            outcome = self.module(task, scope, variables)
            if outcome.status == "skipped":
                return outcome     # check mode did not run it: nothing to wait for
            outcome.result["attempts"] = attempt
            bound = variables.scoped("this task's result", {task.register: _registered(outcome)}
                                     if task.register else {})
            if condition(task.until, bound, where):
                return outcome
            if attempt < attempts:
                self.runner.output.result(self.host, label, "failed",
                                          f"FAILED - RETRYING ({attempts - attempt} retries left)")
                if self.runner.stop.wait(delay):
                    break
        outcome.result["attempts"] = max(1, attempts - 1)
        if outcome.status != "failed":
            outcome.status, outcome.message = "failed", f"until {task.until} not true after {attempts} attempts"
        return outcome

    def module(self, task: Task, scope: Scope, variables: HostVars) -> Outcome:
        where = {"file": task.file, "line": task.line, "task": task.label}
        runner = self.runner
        args = task.module.with_defaults({k: v for k, v in resolve(task.args, variables, where).items() if v != OMIT})
        keywords = task.keywords.over(scope.keywords)
        become = _first(keywords.become, variables.get("ansible_become"), self.play.become)
        become_user = _first(keywords.become_user, self.play.become_user, variables.get("ansible_become_user"),
                             "root")
        become_method = str(resolve(_first(keywords.become_method, self.play.become_method,
                                           variables.get("ansible_become_method"), "sudo"), variables, where))
        if become_method not in BECOME_METHODS:
            raise ProvisionError(f"become_method {become_method!r} is not supported by kfab "
                                 f"(it knows: {', '.join(BECOME_METHODS)})", **where)
        check = runner.options.check if keywords.check_mode is None else as_bool(
            resolve(keywords.check_mode, variables, where))
        environment = resolve(keywords.environment, variables, where) if keywords.environment is not None else {}
        if not isinstance(environment, dict) or not all(str(k).isidentifier() for k in environment):
            raise ProvisionError(f"environment must be a mapping of variable names, got {environment!r}", **where)
        remote = runner.remote_for(self.play, self.host, task, variables, where)
        with remote.lock:
            remote.become = as_bool(resolve(become, variables, where))
            remote.become_user = str(resolve(become_user, variables, where))
            remote.become_method = become_method
            remote.check = check
            remote.environment = {str(k): str(v) for k, v in environment.items()}
            files = RoleFiles(task.role, variables, task.role.search_stack(task.file, scope.includers))
            out = apply_module(task.module, args, remote, files, check)
        if task.module.name in COMMAND_MODULES and out.status != "skipped" and task.failed_when is None \
                and command_failed(out):
            out.status, out.message = "failed", command_message(out)
            return out
        return self.override(task, variables, out)

    def override(self, task: Task, variables: HostVars, out: Outcome) -> Outcome:
        if (task.changed_when is None and task.failed_when is None) or out.status == "skipped":
            return out
        where = {"file": task.file, "line": task.line, "task": task.label}
        scope = variables.scoped("this task's result", {task.register: _registered(out)} if task.register else {})
        if task.failed_when is not None:
            if condition(task.failed_when, scope, where):
                out.status, out.message = "failed", out.message or f"failed_when is true: {task.failed_when}"
                return out
            if out.status == "failed":
                out.status, out.message = "ok", None
        if task.changed_when is not None and out.status != "failed":
            out.status = "changed" if condition(task.changed_when, scope, where) else "ok"
        return out

    # ---- meta and handlers ----------------------------------------------------------------------
    def meta(self, task: Task, scope: Scope) -> bool:
        variables = self.variables(scope, task)
        where = {"file": task.file, "line": task.line, "host": self.host, "task": task.label}
        if not condition(list(scope.when) + task.when, variables, where):
            return True
        if task.meta == "flush_handlers":
            return self.flush_handlers()
        if task.meta == "end_host":
            raise EndHost()
        return True

    def flush_handlers(self) -> bool:
        """Notified handlers, once each, in the order they are defined; a handler is notified by its
        name or by a topic it `listen`s to. One a handler notifies runs in this flush too (another pass
        for those defined before it)."""
        handlers = self.play.handlers()
        for _ in range(len(handlers) + 1):
            pending, self.notified = self.notified, set()
            if not pending:
                return True
            for handler in handlers:
                if self.runner.stop.is_set():
                    return False
                if handler.name in pending or pending & set(handler.listen):
                    ref = next((r for r in self.play.roles if r.role is handler.role), RoleRef(handler.role))
                    if not self.task(handler, Scope(ref), handler=True):
                        return False
        self.notified.clear()
        return True


def loop_items(loop, variables: HostVars, where: dict) -> list:
    if isinstance(loop, dict) and "__with__" in loop:
        value = resolve(loop["value"], variables, where)
        if loop["__with__"] == "dict":
            if not isinstance(value, dict):
                raise ProvisionError(f"with_dict expects a mapping, got {type(value).__name__}", **where)
            return [{"key": k, "value": v} for k, v in value.items()]
        if loop["__with__"] == "items":
            value = value if isinstance(value, list) else [value]
            return [v for x in value for v in (x if isinstance(x, list) else [x])]
        return value if isinstance(value, list) else [value]
    items = resolve(loop, variables, where)
    if not isinstance(items, list):
        raise ProvisionError(f"Invalid data passed to 'loop', it requires a list, got this instead: {items!r}",
                             **where)
    return items


def _registered(out: Outcome) -> dict:
    return out.result | {"changed": out.status == "changed", "failed": out.status == "failed"}


def _first(*values):
    for value in values:
        if value is not None:
            return value
    return None
