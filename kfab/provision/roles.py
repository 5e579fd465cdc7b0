"""Roles in Ansible's shape, loaded and checked before anything connects to a host:
roles/<r>/tasks/main.yml (+ files it import_tasks), handlers/main.yml, defaults/main.yml, vars/main.yml,
templates/*.j2, files/."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Layer
from kfab.provision.modules import MODULES
from kfab.provision.modules.base import Module, octal_mode
from kfab.provision.templating import check_syntax, expression_names, file_environment, is_template
from kfab.provision.yamlfile import line_of, load_yaml

TASK_KEYS = ("name", "when", "loop", "register", "notify", "tags", "become", "changed_when",
             "failed_when", "ignore_errors", "vars")


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
    register: str | None = None
    notify: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    become: object = None
    changed_when: object = None
    failed_when: object = None
    ignore_errors: bool = False
    vars: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.role.name} : {self.name}"


@dataclass
class Role:
    name: str
    path: Path
    defaults: Layer
    vars: Layer | None = None     # vars/main.yml: above play vars, as in Ansible
    tasks: list[Task] = field(default_factory=list)
    handlers: list[Task] = field(default_factory=list)
    template_env: jinja2.Environment | None = None
    template_dirs: list[Path] = field(default_factory=list)

    def find_file(self, src: str) -> Path | None:
        # An absolute src is a file on the machine running kfab (e.g. a freshly built wheel).
        path = Path(src) if Path(src).is_absolute() else self.path / "files" / src
        return path if path.is_file() else None

    def find_template(self, src: str) -> Path | None:
        for d in self.template_dirs:
            if (d / src).is_file():
                return d / src
        return None


def load_role(name: str, roles_dir: Path, shared_templates: Path) -> Role:
    path = roles_dir / name
    if not path.is_dir():
        raise ProvisionError(f"role '{name}' not found (looked in {roles_dir})")
    defaults = _mapping_file(path / "defaults" / "main.yml")
    dirs = [d for d in (path / "templates", shared_templates) if d.is_dir()]
    role = Role(name, path, Layer(str(path / "defaults" / "main.yml"), defaults),
                vars=Layer(str(path / "vars" / "main.yml"), _mapping_file(path / "vars" / "main.yml")),
                template_env=file_environment(dirs), template_dirs=dirs)
    for d in dirs:
        for tpl in sorted(d.rglob("*.j2")):
            check_syntax(role.template_env, tpl.read_text(), str(tpl))
    tasks_file = path / "tasks" / "main.yml"
    if not tasks_file.is_file():
        raise ProvisionError(f"role '{name}' has no tasks/main.yml", file=str(tasks_file))
    role.tasks = _task_list(tasks_file, role)
    handlers_file = path / "handlers" / "main.yml"
    if handlers_file.is_file():
        role.handlers = _task_list(handlers_file, role)
    return role


def _mapping_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProvisionError("must be a mapping of variables", file=str(path), line=line_of(data))
    return data


def _task_list(path: Path, role: Role, trail: tuple = ()) -> list[Task]:
    if path in trail:
        raise ProvisionError(f"import_tasks loop: {' -> '.join(str(p) for p in trail + (path,))}")
    data = load_yaml(path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise ProvisionError("must be a list of tasks", file=str(path), line=line_of(data))
    tasks: list[Task] = []
    for item in data:
        if isinstance(item, dict) and "import_tasks" in item:
            tasks += _import_tasks(item, path, role, trail + (path,))
        else:
            tasks.append(parse_task(item, str(path), role))
    return tasks


def _import_tasks(item: dict, path: Path, role: Role, trail: tuple) -> list[Task]:
    """`- import_tasks: other.yml` (beside this file), with optional `when` and `tags` added to each
    imported task: a static import, resolved when the role is loaded, as Ansible's import_tasks."""
    extra = set(item) - {"import_tasks", "name", "when", "tags"}
    if extra:
        raise ProvisionError(f"import_tasks takes only when and tags, not {', '.join(sorted(extra))}",
                             file=str(path), line=line_of(item))
    target = path.parent / str(item["import_tasks"])
    if not target.is_file():
        raise ProvisionError(f"import_tasks: {target} not found", file=str(path), line=line_of(item))
    tasks = _task_list(target, role, trail)
    for task in tasks:
        task.when = _as_list(item.get("when")) + task.when
        task.tags = [str(t) for t in _as_list(item.get("tags"))] + task.tags
    return tasks


def parse_task(item, file: str, role: Role) -> Task:
    line = line_of(item)

    def fail(message: str, task: str | None = None) -> ProvisionError:
        return ProvisionError(message, file=file, line=line, task=task)

    if not isinstance(item, dict):
        raise fail(f"a task must be a mapping, not {type(item).__name__}")
    name = str(item.get("name") or "")
    candidates = [k for k in item if k not in TASK_KEYS]
    if not candidates:
        raise fail("task has no module (one of: " + ", ".join(sorted(MODULES)) + ")", name or None)
    unknown = [k for k in candidates if k not in MODULES]
    known = [k for k in candidates if k in MODULES]
    if unknown:
        line = line_of(item, unknown[0])
    if unknown and not known and len(unknown) == 1:
        raise fail(f"unknown module '{unknown[0]}' (known: {', '.join(sorted(MODULES))})", name or None)
    if unknown:
        raise fail(f"unknown task key{'s' if len(unknown) > 1 else ''} "
                   f"{', '.join(repr(k) for k in unknown)}", name or None)
    if len(known) > 1:
        raise fail(f"task has more than one module: {', '.join(known)}", name or None)
    module = MODULES[known[0]]
    name = name or known[0]
    args = _module_args(module, item[known[0]], lambda m: fail(m, name))
    task = Task(name=name, module=module, args=args, file=file, line=line, role=role,
                when=_as_list(item.get("when")), loop=item.get("loop"), register=item.get("register"),
                notify=[str(n) for n in _as_list(item.get("notify"))],
                tags=[str(t) for t in _as_list(item.get("tags"))], become=item.get("become"),
                changed_when=item.get("changed_when"), failed_when=item.get("failed_when"),
                ignore_errors=bool(item.get("ignore_errors", False)), vars=item.get("vars") or {})
    if task.register is not None and not str(task.register).isidentifier():
        raise fail(f"register name {task.register!r} is not a valid variable name", name)
    if not isinstance(task.vars, dict):
        raise fail("task 'vars' must be a mapping", name)
    for expr in task.when + [e for e in (task.changed_when, task.failed_when) if isinstance(e, str)]:
        try:
            expression_names(str(expr))
        except jinja2.TemplateSyntaxError as exc:
            raise fail(f"invalid expression {expr!r}: {exc.message}", name) from None
    _check_templates_in(args, lambda m: fail(m, name))
    _check_files(task, lambda m: fail(m, name))
    return task


def _module_args(module: Module, raw, fail) -> dict:
    if isinstance(raw, str) and module.free_form:
        args = {module.free_form: raw}
    elif raw is None:
        args = {}
    elif isinstance(raw, dict):
        args = dict(raw)
    else:
        raise fail(f"module '{module.name}' takes a mapping of arguments")
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


def _check_templates_in(value, fail) -> None:
    from kfab.provision.templating import template_names
    try:
        template_names(value)
    except jinja2.TemplateSyntaxError as exc:
        raise fail(f"template syntax error: {exc.message}") from None


def _check_files(task: Task, fail) -> None:
    src = task.args.get("src")
    if src is None or is_template(src):
        return
    if task.module.name == "template" and task.role.find_template(str(src)) is None:
        raise fail(f"template '{src}' not found in {', '.join(str(d) for d in task.role.template_dirs)}")
    if task.module.name == "copy" and task.role.find_file(str(src)) is None:
        raise fail(f"file '{src}' not found in {task.role.path / 'files'}")


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
