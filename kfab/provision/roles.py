"""Roles in Ansible's shape, loaded and checked before anything connects to a host:
roles/<r>/tasks/main.yml, handlers/main.yml, defaults/main.yml, vars/main.yml, meta/main.yml
(dependencies), templates/*.j2, files/. A task list holds tasks, blocks (block/rescue/always) and
includes (include_tasks/import_tasks of a file beside it, include_role/import_role)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Layer
from kfab.provision.modules import MODULES, canonical_name
from kfab.provision.modules.base import Module, octal_mode
from kfab.provision.searchpath import find, task_stack
from kfab.provision.templating import check_syntax, expression_names, file_environment, is_template
from kfab.provision.vault import Vault
from kfab.provision.yamlfile import line_of, load_yaml

TASK_KEYS = ("name", "when", "loop", "register", "notify", "tags", "become", "become_user", "become_method",
             "changed_when", "failed_when", "ignore_errors", "vars", "loop_control", "until", "retries", "delay",
             "run_once", "delegate_to", "check_mode", "listen", "no_log", "with_items", "with_list", "with_dict",
             "environment", "diff", "args", "any_errors_fatal")
BLOCK_KEYS = ("name", "block", "rescue", "always", "when", "tags", "vars", "become", "become_user",
              "become_method", "ignore_errors", "check_mode", "no_log", "environment", "any_errors_fatal")
INCLUDE_KEYS = ("name", "when", "tags", "vars", "loop", "loop_control", "with_items", "with_list", "with_dict",
                "become", "become_user", "become_method", "no_log")
ROLE_INCLUDE_KEYS = ("name", "tasks_from")
INCLUDES = ("include_tasks", "import_tasks", "include_role", "import_role")
META_ACTIONS = ("flush_handlers", "noop", "end_host", "end_play", "clear_facts", "refresh_inventory")


@dataclass(frozen=True)
class Keywords:
    """Keywords a task takes and a block or include passes down to the tasks inside it; the innermost one
    given wins."""
    become: object = None
    become_user: object = None
    become_method: object = None
    ignore_errors: object = None
    check_mode: object = None
    environment: object = None
    any_errors_fatal: object = None

    @classmethod
    def of(cls, item: dict) -> "Keywords":
        return cls(**{k: item.get(k) for k in cls.__dataclass_fields__})

    def over(self, outer: "Keywords") -> "Keywords":
        return Keywords(**{k: outer.__dict__[k] if v is None else v for k, v in self.__dict__.items()})


@dataclass
class Task:
    name: str
    module: Module
    args: dict
    file: str
    line: int | None
    role: "Role"
    when: list = field(default_factory=list)
    loop: object = None
    loop_control: dict = field(default_factory=dict)
    register: str | None = None
    notify: list[str] = field(default_factory=list)
    listen: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    keywords: Keywords = Keywords()  # become, become_user, ignore_errors, check_mode, environment, ...
    changed_when: object = None
    failed_when: object = None
    vars: dict = field(default_factory=dict)
    until: list = field(default_factory=list)
    retries: object = None
    delay: object = None
    run_once: object = False
    delegate_to: object = None
    no_log: object = None
    diff: object = None
    meta: str | None = None          # `meta: flush_handlers` and friends: run by the runner itself

    @property
    def label(self) -> str:
        return self.name if self.role.of_play else f"{self.role.name} : {self.name}"


@dataclass
class Block:
    """block/rescue/always: `rescue` runs when a task of `block` fails (and clears the failure if it
    succeeds); `always` runs either way. when/tags/vars and the keywords apply to every task inside."""
    name: str
    block: list
    rescue: list
    always: list
    file: str
    line: int | None
    role: "Role"
    when: list = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    keywords: Keywords = Keywords()


@dataclass
class Include:
    """include_tasks/import_tasks (`tasks`, from a file beside this one) or include_role/import_role
    (`role`). when/loop/vars are taken at run time, per loop item."""
    name: str
    kind: str
    file: str
    line: int | None
    role: "Role"
    tasks: list = field(default_factory=list)
    target: "Role | None" = None
    when: list = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    loop: object = None
    loop_control: dict = field(default_factory=dict)
    keywords: Keywords = Keywords()

    @property
    def label(self) -> str:
        return self.name if self.role.of_play else f"{self.role.name} : {self.name}"

    @property
    def body(self) -> list:
        """What the include runs: its task file's tasks, or the role's (tasks_from's file, else main.yml)."""
        return self.target.tasks if self.target is not None and not self.tasks else self.tasks


Node = Task | Block | Include


@dataclass
class Role:
    name: str
    path: Path
    defaults: Layer
    vars: Layer | None = None     # vars/main.yml: above play vars, as in Ansible
    tasks: list = field(default_factory=list)
    handlers: list = field(default_factory=list)
    dependencies: list["Dependency"] = field(default_factory=list)   # meta/main.yml, in order
    allow_duplicates: bool = False
    of_play: bool = False     # a play's own pre_tasks/tasks/post_tasks/handlers (files beside the play file)
    play_dir: Path | None = None    # the play file's directory: last on the search path (templates/, files/)

    def search_stack(self, task_file: str | Path | None = None, includers: tuple = ()) -> list[Path]:
        """Ansible's search path of a task of this role (provision.searchpath): the role, the roles that
        included it or depend on it, the task file's directory. A play's own tasks: the play file's directory."""
        roles = [] if self.of_play else [self.path, *includers]
        if task_file is not None:
            return task_stack(roles, Path(task_file).parent)
        return task_stack(roles, self.path if self.of_play else self.path / "tasks")

    def included_roles(self) -> list["Role"]:
        """Roles this role's tasks include or import, and their dependencies (for handlers)."""
        found = [i.target for i in walk_nodes(self.tasks) if isinstance(i, Include) and i.target is not None]
        return found + [dep.role for dep in self.dependencies]


@dataclass
class Dependency:
    """One entry of meta/main.yml's dependencies: the role, its parameters, and its own tags and when."""
    role: Role
    params: dict
    tags: list[str]
    when: list


class RoleLoader:
    """Loads each role once per play file (roles/ beside it, shared templates/), so include_role and
    meta dependencies of the same role share one Role."""

    def __init__(self, roles_dir: Path, shared_templates: Path, vault: Vault | None = None):
        self.roles_dir = roles_dir
        self.shared_templates = shared_templates
        self.vault = vault
        self.cache: dict[str, Role] = {}

    def __call__(self, name: str) -> Role:
        if name not in self.cache:
            load_role(name, self.roles_dir, self.shared_templates, self)
        return self.cache[name]


def play_tasks(name: str, section: str, items: list, handlers: list, file: Path, loader: RoleLoader) -> Role:
    """A play's `tasks:` (or pre_tasks/post_tasks) as a role without defaults: its files and templates are
    looked up beside the play file (files/, templates/), as Ansible does for play tasks."""
    base = file.parent
    role = Role(name, base, Layer(f"{file} ({section})", {}), of_play=True, play_dir=base)
    role.tasks = _nodes(items, file, role, loader, (file,))
    role.handlers = _nodes(handlers, file, role, loader, (file,))
    return role


def load_role(name: str, roles_dir: Path, shared_templates: Path, loader: RoleLoader | None = None) -> Role:
    loader = loader or RoleLoader(roles_dir, shared_templates)
    path = roles_dir / name
    if not path.is_dir():
        raise ProvisionError(f"role '{name}' not found (looked in {roles_dir})")
    defaults = _mapping_file(path / "defaults" / "main.yml", vault=loader.vault)
    dirs = [d for d in (path / "templates", shared_templates) if d.is_dir()]
    role = Role(name, path, Layer(str(path / "defaults" / "main.yml"), defaults),
                vars=Layer(str(path / "vars" / "main.yml"),
                           _mapping_file(path / "vars" / "main.yml", vault=loader.vault)),
                play_dir=roles_dir.parent)
    loader.cache[name] = role   # before its tasks: a role that includes itself finds itself, not a loop
    syntax = file_environment(dirs)   # templates are found on the task's search path when they render
    for d in dirs:
        for tpl in sorted(d.rglob("*.j2")):
            check_syntax(syntax, tpl.read_text(), str(tpl))
    _meta(role, path / "meta" / "main.yml", loader)
    tasks_file = path / "tasks" / "main.yml"
    if not tasks_file.is_file():
        raise ProvisionError(f"role '{name}' has no tasks/main.yml", file=str(tasks_file))
    role.tasks = _argument_spec_check(role, path) + _task_list(tasks_file, role, loader)
    handlers_file = path / "handlers" / "main.yml"
    if handlers_file.is_file():
        role.handlers = _task_list(handlers_file, role, loader)
    return role


def _meta(role: Role, path: Path, loader: RoleLoader) -> None:
    meta = _mapping_file(path, what="role metadata")
    role.allow_duplicates = bool(meta.get("allow_duplicates", False))
    deps = meta.get("dependencies") or []
    if not isinstance(deps, list):
        raise ProvisionError("'dependencies' must be a list of roles", file=str(path), line=line_of(meta))
    for dep in deps:
        if isinstance(dep, str):
            dep = {"role": dep}
        if not isinstance(dep, dict) or not (dep.get("role") or dep.get("name")):
            raise ProvisionError("a dependency is a role name or a mapping with 'role:'", file=str(path),
                                 line=line_of(dep) or line_of(meta))
        name = str(dep.get("role") or dep.get("name"))
        params = {k: v for k, v in dep.items() if k not in ("role", "name", "tags", "when")}
        params = dict(params.pop("vars", None) or {}) | params
        try:
            role.dependencies.append(Dependency(loader(name), params, _tags(dep.get("tags")),
                                                _as_list(dep.get("when"))))
        except ProvisionError as exc:
            raise exc.located(file=str(path), line=line_of(dep)) from None


def _argument_spec_check(role: Role, path: Path) -> list:
    """meta/argument_specs.yml (or argument_specs in meta/main.yml): its `main` entry point becomes the
    role's first task, validate_argument_spec, as Ansible inserts it."""
    file = path / "meta" / "argument_specs.yml"
    specs = _mapping_file(file, what="argument specs").get("argument_specs")
    if specs is None:
        file = path / "meta" / "main.yml"
        specs = _mapping_file(file, what="role metadata").get("argument_specs")
    if not specs:
        return []
    main = specs.get("main") if isinstance(specs, dict) else None
    if not isinstance(main, dict) or not isinstance(main.get("options") or {}, dict):
        raise ProvisionError("argument_specs: expected 'main: {options: {name: {type, required, ...}}}'",
                             file=str(file), line=line_of(specs))
    title = f" - {main['short_description']}" if main.get("short_description") else ""
    return [Task(name=f"Validating arguments against arg spec 'main'{title}", module=MODULES["validate_argument_spec"],
                 args={"argument_spec": main.get("options") or {}, "name": "main"}, file=str(file),
                 line=line_of(specs), role=role, tags=["always"])]


def _mapping_file(path: Path, what: str = "variables", vault: Vault | None = None) -> dict:
    if not path.is_file():
        return {}
    data = load_yaml(path, vault)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProvisionError(f"must be a mapping of {what}", file=str(path), line=line_of(data))
    return data


def _task_list(path: Path, role: Role, loader: RoleLoader, trail: tuple = ()) -> list:
    if path in trail:
        raise ProvisionError(f"import_tasks loop: {' -> '.join(str(p) for p in trail + (path,))}")
    data = load_yaml(path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise ProvisionError("must be a list of tasks", file=str(path), line=line_of(data))
    return _nodes(data, path, role, loader, trail + (path,))


def _nodes(items: list, path: Path, role: Role, loader: RoleLoader, trail: tuple) -> list:
    nodes: list = []
    for item in items:
        keys = {canonical_name(k) for k in item} if isinstance(item, dict) else set()
        if "block" in keys:
            nodes.append(_block(item, path, role, loader, trail))
        elif keys & set(INCLUDES):
            node = _include(item, path, role, loader, trail)
            if node.kind == "import_tasks":
                nodes += _imported(node)
            else:
                nodes.append(node)
        else:
            nodes.append(parse_task(item, str(path), role))
    return nodes


def _block(item: dict, path: Path, role: Role, loader: RoleLoader, trail: tuple) -> Block:
    line = line_of(item)
    extra = set(item) - set(BLOCK_KEYS)
    if extra:
        raise ProvisionError(f"'{sorted(extra)[0]}' is not a valid attribute for a Block", file=str(path), line=line)
    parts = {}
    for key in ("block", "rescue", "always"):
        value = item.get(key) or []
        if not isinstance(value, list):
            raise ProvisionError(f"'{key}' must be a list of tasks", file=str(path), line=line)
        parts[key] = _nodes(value, path, role, loader, trail)
    block_vars = item.get("vars") or {}
    if not isinstance(block_vars, dict):
        raise ProvisionError("block 'vars' must be a mapping", file=str(path), line=line)
    _hide_output(parts["block"] + parts["rescue"] + parts["always"], item.get("no_log"))
    return Block(name=str(item.get("name") or "block"), file=str(path), line=line, role=role,
                 when=_as_list(item.get("when")), tags=_tags(item.get("tags")), vars=block_vars,
                 keywords=Keywords.of(item), **parts)


def _hide_output(nodes: list, no_log) -> None:
    """A block's (or included file's) no_log applies to every task inside that says nothing itself; set
    when loading, since these tasks belong to this block or include alone."""
    if no_log is None:
        return
    for task in walk_tasks(nodes):
        if task.no_log is None:
            task.no_log = no_log


def _include(item: dict, path: Path, role: Role, loader: RoleLoader, trail: tuple) -> Include:
    line = line_of(item)
    raw_kind = next(k for k in item if canonical_name(k) in INCLUDES)
    kind = canonical_name(raw_kind)
    extra = set(item) - set(INCLUDE_KEYS) - {raw_kind}
    if extra:
        raise ProvisionError(f"{kind} does not take {', '.join(sorted(extra))}", file=str(path), line=line)
    spec = item[raw_kind]
    if kind in ("include_role", "import_role"):
        if not isinstance(spec, dict) or not spec.get("name"):
            raise ProvisionError(f"{kind} needs 'name: <role>'", file=str(path), line=line)
        if "no_log" in item:
            raise ProvisionError(f"{kind}: no_log is not supported on a role include (its tasks are shared); "
                                 f"set no_log on the role's tasks", file=str(path), line=line)
        unsupported = set(spec) - set(ROLE_INCLUDE_KEYS)
        if unsupported:
            raise ProvisionError(f"{kind}: {', '.join(sorted(unsupported))} not supported by kfab "
                                 f"(it takes {', '.join(ROLE_INCLUDE_KEYS)})", file=str(path), line=line)
        target_name = str(spec["name"])
        if is_template(target_name):
            raise ProvisionError(f"{kind}: the role name must be written out, not a template "
                                 f"({target_name!r})", file=str(path), line=line)
        try:
            target = loader(target_name)
        except ProvisionError as exc:
            raise exc.located(file=str(path), line=line) from None
        node = Include(name=str(item.get("name") or f"{kind} {target_name}"), kind=kind, file=str(path),
                       line=line, role=role, target=target)
        if spec.get("tasks_from"):
            # The role's other task file instead of main.yml (its defaults, vars and handlers as usual).
            entry = target.path / "tasks" / str(spec["tasks_from"])
            entry = entry if entry.suffix else entry.with_suffix(".yml")
            if not entry.is_file():
                raise ProvisionError(f"{kind}: tasks_from {spec['tasks_from']!r}: {entry} not found",
                                     file=str(path), line=line)
            node.tasks = _task_list(entry, target, loader, trail)
    else:
        name = spec.get("file") if isinstance(spec, dict) else spec
        if not name or is_template(str(name)):
            raise ProvisionError(f"{kind}: the file name must be written out (kfab loads it before the run), "
                                 f"not {name!r}", file=str(path), line=line)
        target_file = _find_tasks_file(path, role, str(name))
        if target_file is None:
            raise ProvisionError(f"{kind}: {name} not found (beside {path.name} or in {role.path / 'tasks'})",
                                 file=str(path), line=line)
        try:
            tasks = _task_list(target_file, role, loader, trail)
        except ProvisionError as exc:
            if "import_tasks loop" in exc.message:
                raise
            raise exc.located(file=str(path), line=line) from None
        _hide_output(tasks, item.get("no_log"))
        node = Include(name=str(item.get("name") or f"{kind} {name}"), kind=kind, file=str(path), line=line,
                       role=role, tasks=tasks)
    loop_key = next((k for k in ("loop", "with_items", "with_list", "with_dict") if k in item), None)
    if kind.startswith("import_") and loop_key:
        raise ProvisionError(f"{kind} cannot loop (Ansible refuses it too); use include_"
                             f"{kind.split('_')[1]}", file=str(path), line=line)
    node.when = _as_list(item.get("when"))
    node.tags = _tags(item.get("tags"))
    node.vars = dict(item.get("vars") or {})
    node.loop = _loop_of(item, loop_key)
    node.loop_control = dict(item.get("loop_control") or {})
    node.keywords = Keywords.of(item)
    return node


def _imported(node: Include) -> list:
    """A static import is its tasks, each with the import's when, tags and vars added (Ansible's way:
    the condition is evaluated per task)."""
    for item in node.tasks:
        item.when = node.when + item.when
        item.tags = node.tags + item.tags
        item.vars = node.vars | item.vars
    return node.tasks


def _find_tasks_file(path: Path, role: Role, name: str) -> Path | None:
    for base in (path.parent, role.path / "tasks"):
        if (base / name).is_file():
            return base / name
    return None


def parse_task(item, file: str, role: Role) -> Task:
    line = line_of(item)

    def fail(message: str, task: str | None = None) -> ProvisionError:
        return ProvisionError(message, file=file, line=line, task=task)

    if not isinstance(item, dict):
        raise fail(f"a task must be a mapping, not {type(item).__name__}")
    name = str(item.get("name") or "")
    candidates = [k for k in item if k not in TASK_KEYS]
    if not candidates:
        raise fail("no module/action detected in task. (kfab knows: " + ", ".join(sorted(MODULES)) + ")",
                   name or None)
    unknown = [k for k in candidates if canonical_name(k) not in MODULES and canonical_name(k) != "meta"]
    known = [k for k in candidates if k not in unknown]
    if unknown:
        line = line_of(item, unknown[0])
    if unknown and not known and len(unknown) == 1:
        # Ansible's own words, so a search for the message finds the cause.
        raise fail(f"couldn't resolve module/action '{unknown[0]}'. This often indicates a misspelling, "
                   f"missing collection, or incorrect module path. (kfab knows: {', '.join(sorted(MODULES))})",
                   name or None)
    if unknown:
        # Ansible's words: a key that is no module is taken as a task attribute it does not know.
        raise fail(f"'{unknown[0]}' is not a valid attribute for a Task", name or None)
    if len(known) > 1:
        raise fail(f"conflicting action statements: {', '.join(known)}", name or None)
    key = known[0]
    if canonical_name(key) == "meta":
        return _meta_task(item, key, file, line, role, fail)
    module = MODULES[canonical_name(key)]
    name = name or canonical_name(key)
    raw = item[key]
    if isinstance(item.get("args"), dict):
        raw = ({module.free_form: raw} if isinstance(raw, str) and module.free_form else dict(raw or {})) \
            | item["args"]
    args = _module_args(module, raw, lambda m: fail(m, name))
    loop_key = next((k for k in ("loop", "with_items", "with_list", "with_dict") if k in item), None)
    task = Task(name=name, module=module, args=args, file=file, line=line, role=role,
                when=_as_list(item.get("when")), loop=_loop_of(item, loop_key),
                loop_control=dict(item.get("loop_control") or {}), register=item.get("register"),
                notify=[str(n) for n in _as_list(item.get("notify"))],
                listen=[str(n) for n in _as_list(item.get("listen"))],
                tags=_tags(item.get("tags")), keywords=Keywords.of(item),
                changed_when=item.get("changed_when"), failed_when=item.get("failed_when"),
                vars=item.get("vars") or {},
                until=_as_list(item.get("until")), retries=item.get("retries"), delay=item.get("delay"),
                run_once=item.get("run_once", False), delegate_to=item.get("delegate_to"),
                no_log=item.get("no_log"), diff=item.get("diff"))
    if task.register is not None and not str(task.register).isidentifier():
        raise fail(f"register name {task.register!r} is not a valid variable name", name)
    if not isinstance(task.vars, dict):
        raise fail("task 'vars' must be a mapping", name)
    if task.keywords.environment is not None and not isinstance(task.keywords.environment, (dict, str)):
        raise fail("task 'environment' must be a mapping of variable names to values", name)
    conditions = task.when + task.until + [e for c in (task.changed_when, task.failed_when)
                                           for e in _as_list(c) if isinstance(e, str)]
    for expr in conditions:
        try:
            expression_names(str(expr))
        except jinja2.TemplateSyntaxError as exc:
            raise fail(f"invalid expression {expr!r}: {exc.message}", name) from None
    _check_templates_in(args, lambda m: fail(m, name))
    return task


def _meta_task(item: dict, key: str, file: str, line, role: Role, fail) -> Task:
    action = str(item[key])
    if action not in META_ACTIONS:
        raise fail(f"invalid meta action requested: {action} (one of: {', '.join(META_ACTIONS)})",
                   item.get("name"))
    if action in ("clear_facts", "refresh_inventory", "end_play"):
        raise fail(f"meta: {action} is not supported by kfab", item.get("name"))
    return Task(name=str(item.get("name") or f"meta: {action}"), module=MODULES["debug"], args={}, file=file,
                line=line, role=role, when=_as_list(item.get("when")), tags=_tags(item.get("tags")), meta=action)


def _loop_of(item: dict, key: str | None):
    """`loop` as is; with_items flattens one level and with_dict gives key/value items, as Ansible's
    lookups do (applied when the loop is resolved, see runner.loop_items)."""
    if key is None:
        return None
    value = item[key]
    return value if key in ("loop", "with_list") else {"__with__": key[5:], "value": value}


def _module_args(module: Module, raw, fail) -> dict:
    if raw is None:
        args = {}
    elif isinstance(raw, dict):
        args = dict(raw)
    elif isinstance(raw, str):
        args = _key_values(raw, module, fail)
    else:
        raise fail(f"module '{module.name}' takes a mapping of arguments")
    if module.any_args:
        return args
    for alias, key in module.aliases.items():
        if alias in args:
            if key in args:
                raise fail(f"module '{module.name}': '{alias}' and '{key}' are the same argument; give one")
            args[key] = args.pop(alias)
    for key in args:
        if key not in module.args:
            raise fail(f"module '{module.name}': unknown argument '{key}' "
                       f"(known: {', '.join(module.args)})")
    for key, spec in module.args.items():
        if spec.required and args.get(key) in (None, ""):
            raise fail(f"module '{module.name}': argument '{key}' is required")
        value = args.get(key)
        if spec.choices and value is not None and not is_template(value) and value not in spec.choices:
            raise fail(f"module '{module.name}': {key}={value!r}, expected one of {', '.join(spec.choices)}")
        if key == "mode" and value is not None and not is_template(value):
            try:
                octal_mode(value)
            except ValueError as exc:
                raise fail(str(exc)) from None
    return args


def _key_values(text: str, module: Module, fail) -> dict:
    """Ansible's `key=value` shorthand (`file: path=/x state=directory`, `debug: msg="hi {{ x }}"`). For a
    free-form module the words that are not its own arguments are the free form, as Ansible reads
    `command: make all creates=/x chdir=/src`."""
    result, rest = {}, text
    for word in split_args(text):
        key, sep, value = word.partition("=")
        own = key in module.args and not (key == module.free_form and module.name in ("command", "shell"))
        if sep and (module.any_args or own or key in module.aliases):
            result[key] = _unquote(value)
            rest = rest.replace(word, "", 1)     # what is left keeps its own spacing and newlines
        elif not module.free_form:
            raise fail(f"module '{module.name}': expected key=value, got {word!r}")
    if rest.strip():
        result[module.free_form] = rest if not result else rest.strip()
    return result


def split_args(text: str) -> list[str]:
    """Words split on spaces outside quotes and outside Jinja2's {{ }} / {% %} (as Ansible's split_args)."""
    words, word, quote, depth, i = [], "", None, 0, 0
    while i < len(text):
        pair = text[i:i + 2]
        if quote is None and pair in ("{{", "{%"):
            depth, word, i = depth + 1, word + pair, i + 2
            continue
        if quote is None and depth and pair in ("}}", "%}"):
            depth, word, i = depth - 1, word + pair, i + 2
            continue
        char = text[i]
        if char in "\"'" and depth == 0 and (quote is None or quote == char) and (i == 0 or text[i - 1] != "\\"):
            quote = None if quote == char else char
        if char.isspace() and quote is None and depth == 0:
            if word:
                words.append(word)
            word = ""
        else:
            word += char
        i += 1
    if word:
        words.append(word)
    return words


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _check_templates_in(value, fail) -> None:
    from kfab.provision.templating import template_names
    try:
        template_names(value)
    except jinja2.TemplateSyntaxError as exc:
        raise fail(f"template syntax error: {exc.message}") from None


def check_local_files(roles: list[Role]) -> None:
    """Every template's and copy's literal `src` exists on its task's search path, checked once the play
    file's roles are all loaded: the path includes every role that may include the task's role or depend on
    it (which one does is known only at run time, as in Ansible)."""
    includers: dict[int, set[Path]] = {id(role): set() for role in roles}
    changed = True
    while changed:      # transitively: a role included by a role included by r searches r too
        changed = False
        for role in roles:
            for target in role.included_roles():
                new = ({role.path} if not role.of_play else set()) | includers.get(id(role), set())
                if not new <= includers.setdefault(id(target), set()):
                    includers[id(target)] |= new
                    changed = True
    for role in roles:
        for task in walk_nodes(role.tasks + role.handlers):
            if not isinstance(task, Task) or task.module.name not in ("template", "copy"):
                continue
            src = task.args.get("src")
            if src is None or is_template(src):
                continue
            stack = role.search_stack(task.file, tuple(sorted(includers[id(role)])))
            try:
                find(stack, role.play_dir or Path(task.file).parent,
                     "templates" if task.module.name == "template" else "files", str(src))
            except ProvisionError as exc:
                raise exc.located(file=task.file, line=task.line, task=task.name) from None


def walk_nodes(nodes: list) -> Iterator[Node]:
    """Every node of a task list, depth first (blocks' parts, included task files; not included roles)."""
    for node in nodes:
        yield node
        if isinstance(node, Block):
            yield from walk_nodes(node.block + node.rescue + node.always)
        elif isinstance(node, Include):
            yield from walk_nodes(node.tasks)


def walk_tasks(nodes: list) -> Iterator[Task]:
    """Every task of a task list, through blocks and included task files and roles."""
    visited: set[int] = set()

    def walk(items):
        for node in items:
            if isinstance(node, Task):
                yield node
            elif isinstance(node, Block):
                yield from walk(node.block + node.rescue + node.always)
            elif isinstance(node, Include):
                if node.target is None:
                    yield from walk(node.tasks)
                elif (id(node.target), id(node.body)) not in visited:
                    visited.add((id(node.target), id(node.body)))
                    yield from walk(node.body)

    yield from walk(nodes)


def _tags(value) -> list[str]:
    return [str(t) for t in _as_list(value)]


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
