"""Checks every host's tasks before any connection is opened: each variable a task, condition, loop or
template uses must be defined for that host, and local files a task uploads must exist. Facts and registered
results are not known yet, so they stand in as `Unknown` values that absorb any use; only what is certainly
undefined is reported."""

from __future__ import annotations

import jinja2

from kfab.provision.apply import RoleFiles
from kfab.provision.context import RunVars
from kfab.provision.errors import ProvisionError
from kfab.provision.hostplay import loop_items
from kfab.provision.inventory import Inventory, Layer
from kfab.provision.playbook import Play, RoleRef
from kfab.provision.roles import Block, Include, Task, walk_tasks
from kfab.provision.templating import evaluate, render_value, template_names

CONNECTION_VARS = ("ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file",
                   "kfab_known_hosts_file", "kfab_host_key_checking", "ansible_connection")


class Unknown:
    """A value only known at run time (a fact, a registered result)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def __bool__(self):
        return True

    def __str__(self):
        return ""

    def __int__(self):
        return 0

    def __float__(self):
        return 0.0

    def __eq__(self, other):
        return self

    def __ne__(self, other):
        return self

    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __floordiv__ = \
        __mod__ = __neg__ = __contains__ = __getitem__

    def __hash__(self):
        return id(self)


UNKNOWN = Unknown()


def preflight(inventory: Inventory, plays: list[Play], extra_vars: dict, hosts: list[str]) -> list[ProvisionError]:
    run = RunVars(inventory, extra_vars)
    errors: list[ProvisionError] = []
    for host in hosts:
        run.facts[host] = UNKNOWN
        for play in plays:
            for role in play.all_roles():
                for task in walk_tasks(role.tasks + role.handlers):
                    if task.register:
                        run.registered[host][task.register] = UNKNOWN
                    if task.module.any_args:     # set_fact
                        for name in task.args:
                            run.registered[host][name] = UNKNOWN
    for host in hosts:
        v = run.host_vars(host)
        for name in CONNECTION_VARS:
            if name in v:
                _collect(errors, lambda n=name: v[n], host=host)
        for play in plays:
            if host not in inventory.select(play.hosts):
                continue
            for ref, task, scopes, when in _tasks_in_play(play):
                _collect(errors, lambda: _check_task(run, host, play, ref, task, scopes, when),
                         host=host, task=task.label, file=task.file, line=task.line)
    seen, unique = set(), []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            unique.append(e)
    return unique


def _tasks_in_play(play: Play):
    """(role ref, task, variable layers of what encloses it, inherited conditions) for every task and
    handler, through blocks and includes. What only a run can know (an include's loop item, the failed
    task in a rescue) is Unknown."""
    seen_roles: set[tuple[int, int]] = set()

    def walk(nodes, ref, scopes: tuple, when: tuple):
        for node in nodes:
            if isinstance(node, Task):
                if node.meta is None:
                    yield ref, node, scopes, when
            elif isinstance(node, Block):
                inner = scopes + ((Layer("block vars", node.vars),) if node.vars else ())
                yield from walk(node.block + node.always, ref, inner, when + tuple(node.when))
                rescue = Layer("rescue", {"ansible_failed_task": UNKNOWN, "ansible_failed_result": UNKNOWN})
                yield from walk(node.rescue, ref, inner + (rescue,), when + tuple(node.when))
            elif isinstance(node, Include):
                loop_var = str(node.loop_control.get("loop_var", "item"))
                index_var = node.loop_control.get("index_var")
                extra = dict(node.vars) | ({loop_var: UNKNOWN, "ansible_loop_var": loop_var}
                                           if node.loop is not None else {}) \
                    | ({str(index_var): UNKNOWN} if node.loop is not None and index_var else {})
                inner = scopes + (Layer(f"{node.kind} vars", extra),)
                if node.target is not None:
                    if (id(node.target), id(node.body)) not in seen_roles:
                        seen_roles.add((id(node.target), id(node.body)))
                        includers = (() if ref.role.of_play else (ref.role.path,)) + ref.dependents
                        yield from walk(node.body, RoleRef(node.target, dependents=includers), (inner[-1],), ())
                else:
                    yield from walk(node.tasks, ref, inner, ())

    for ref in play.roles:
        yield from walk(ref.role.tasks, ref, (), tuple(ref.when))
    for handler in play.handlers():
        owner = next((r for r in play.roles if r.role is handler.role), RoleRef(handler.role))
        yield owner, handler, (), ()


def _check_task(run: RunVars, host: str, play: Play, ref, task, scopes: tuple = (), when: tuple = ()) -> None:
    stack = task.role.search_stack(task.file, ref.dependents)
    variables = run.host_vars(host, play, ref, scopes=scopes, stack=stack)
    if task.vars:
        variables = variables.scoped("task vars", task.vars)
    loop_var = str(task.loop_control.get("loop_var", "item"))
    for condition in list(when) + task.when:
        if isinstance(condition, bool):
            if not condition:
                return
        elif loop_var in template_names(condition) or loop_var in _names(condition):
            continue    # a condition on the loop item is evaluated per item at run time
        elif evaluate(str(condition), variables) is False:
            return   # certainly skipped on this host: its arguments may use what only exists otherwise
    items = [UNKNOWN]
    if task.loop is not None:
        loop = loop_items(task.loop, variables, {})
        items = loop if isinstance(loop, list) and loop else [UNKNOWN]
    for item in items:
        index_var = task.loop_control.get("index_var")
        scoped = variables.scoped("loop item", {loop_var: item} | ({str(index_var): 0} if index_var else {})) \
            if task.loop is not None else variables
        args = render_value(task.args, scoped)
        files = RoleFiles(task.role, scoped, stack)
        if task.module.name == "template" and isinstance(args.get("src"), str):
            files.render_template(args["src"])
        # Local files a task uploads must exist now; unless their name depends on run-time values.
        runtime = set(run.registered[host]) | {"kfab_facts", "hostvars"}
        if task.module.name == "copy" and isinstance(args.get("src"), str) \
                and not template_names(task.args.get("src")) & runtime:
            files.find("files", args["src"])
        if task.module.name == "venv" and isinstance(args.get("wheelhouse"), str) \
                and not template_names(task.args.get("wheelhouse")) & runtime:
            files.local_files(args["wheelhouse"], ".whl")


def _names(condition) -> set[str]:
    from kfab.provision.templating import expression_names
    try:
        return expression_names(str(condition))
    except Exception:  # noqa: BLE001 - a syntax error was reported when the role was loaded
        return set()


def _collect(errors: list, check, **where) -> None:
    try:
        check()
    except jinja2.UndefinedError as exc:
        errors.append(ProvisionError(exc.message or "undefined variable", **where))
    except ProvisionError as exc:
        if any(w in exc.message for w in ("undefined", "refers to itself", "syntax", "not found",
                                          "Could not find")):
            errors.append(exc.located(**where))
    except Exception:  # noqa: BLE001 - anything else may depend on run-time values; the run will tell
        pass
