"""A play file (site.yml): plays that map host groups to roles, loaded and checked as a whole."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Layer
from kfab.provision.roles import Role, RoleLoader, Task, check_local_files, play_tasks, walk_tasks
from kfab.provision.vault import Vault
from kfab.provision.yamlfile import line_of, load_yaml

PLAY_KEYS = ("name", "hosts", "roles", "vars", "become", "become_user", "become_method", "tags", "gather_facts",
             "serial", "max_fail_percentage", "any_errors_fatal", "vars_files", "pre_tasks", "tasks", "post_tasks",
             "handlers")
# Ansible runs a play's parts in this order, with notified handlers flushed after each section.
SECTIONS = ("pre_tasks", "roles", "tasks", "post_tasks")
ROLE_REF_KEYS = ("role", "name", "vars", "tags", "when")
FALSE_WORDS = ("false", "no", "off", "0", "n")


@dataclass
class RoleRef:
    role: Role
    vars: dict = field(default_factory=dict)    # role params: above registered results, below -e
    tags: list[str] = field(default_factory=list)
    when: list = field(default_factory=list)
    section: str = "roles"                      # pre_tasks | roles | tasks | post_tasks
    dependents: tuple = ()                      # paths of the roles that depend on it, nearest first (search path)


@dataclass
class Play:
    name: str
    hosts: str
    roles: list[RoleRef]
    vars: dict
    become: bool
    tags: list[str]
    file: str
    line: int | None
    serial: list = field(default_factory=list)       # batch sizes: ints or "30%"; the last one repeats
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    become_user: str | None = None
    become_method: str | None = None
    vars_files: list = field(default_factory=list)   # Layers, in order (above play vars)
    gather_facts: bool = True     # kfab gathers once per connection; the recap counts it per play as Ansible

    def all_roles(self) -> list[Role]:
        """Roles of this play, their meta dependencies and the roles they include, each once."""
        found: dict[int, Role] = {}

        def visit(role: Role) -> None:
            if id(role) not in found:
                found[id(role)] = role
                for other in role.included_roles():
                    visit(other)

        for ref in self.roles:
            visit(ref.role)
        return list(found.values())

    def handlers(self) -> list[Task]:
        """Handlers in the order they are defined (which is the order they run); the first of a name wins."""
        found: dict[str, Task] = {}
        for role in self.all_roles():
            for handler in walk_tasks(role.handlers):
                found.setdefault(handler.name, handler)
        return list(found.values())


def load_playbook(path: str | Path, vault: Vault | None = None) -> list[Play]:
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ProvisionError("play file not found", file=file)
    data = load_yaml(path, vault)
    if not isinstance(data, list) or not data:
        raise ProvisionError("a play file is a list of plays ('- hosts: <group>' with 'roles: [...]')",
                             file=file, line=line_of(data))
    base = path.parent
    loader = RoleLoader(base / "roles", base / "templates", vault)
    plays = [_play(item, file, base, loader) for item in data]
    check_local_files(list({id(r): r for play in plays for r in play.all_roles()}.values()))
    for play in plays:
        handlers = play.handlers()
        names = {h.name for h in handlers} | {topic for h in handlers for topic in h.listen}
        for role in play.all_roles():
            for task in walk_tasks(role.tasks + role.handlers):
                for name in task.notify:
                    if name not in names:
                        raise ProvisionError(f"notifies '{name}', but no role of this play has a handler "
                                             f"by that name (or listening to it)", file=task.file,
                                             line=task.line, task=task.name)
    return plays


def _with_dependencies(refs: list[RoleRef]) -> list[RoleRef]:
    """meta/main.yml dependencies run before the role that needs them; a role runs once per play with the
    same parameters unless it sets allow_duplicates (Ansible's rule)."""
    result: list[RoleRef] = []
    seen: list[tuple[int, dict]] = []

    def add(ref: RoleRef, trail: tuple) -> None:
        if ref.role.name in trail:
            raise ProvisionError(f"role dependency loop: {' -> '.join(trail + (ref.role.name,))}",
                                 file=str(ref.role.path / "meta" / "main.yml"))
        for dep in ref.role.dependencies:
            add(RoleRef(dep.role, dict(dep.params), list(ref.tags) + dep.tags, list(ref.when) + dep.when,
                        dependents=(ref.role.path, *ref.dependents)), trail + (ref.role.name,))
        key = (id(ref.role), ref.vars)
        if key in seen and not ref.role.allow_duplicates:
            return
        seen.append(key)
        result.append(ref)

    for ref in refs:
        add(ref, ())
    return result


def _play(item, file: str, base: Path, loader: RoleLoader) -> Play:
    line = line_of(item)
    if not isinstance(item, dict):
        raise ProvisionError("a play must be a mapping", file=file, line=line)
    for key in item:
        if key not in PLAY_KEYS:
            raise ProvisionError(f"'{key}' is not a valid attribute for a Play", file=file, line=line)
    if not item.get("hosts"):
        raise ProvisionError("play has no 'hosts'", file=file, line=line)
    hosts = item["hosts"]
    if isinstance(hosts, list):
        hosts = ",".join(str(h) for h in hosts)
    refs = []
    roles = item.get("roles") or []
    if not isinstance(roles, list):
        raise ProvisionError("'roles' must be a list", file=file, line=line)
    for entry in roles:
        if isinstance(entry, str):
            entry = {"role": entry}
        if not isinstance(entry, dict) or not (entry.get("role") or entry.get("name")):
            raise ProvisionError("a role entry is a name or a mapping with 'role:'", file=file, line=line)
        name = str(entry.get("role") or entry.get("name"))
        # Other keys are role parameters, as Ansible takes them (`- role: x` then `x_port: 80`).
        params = {k: v for k, v in entry.items() if k not in ROLE_REF_KEYS}
        try:
            role = loader(name)
        except ProvisionError as exc:
            raise exc.located(file=file, line=line) from None
        tags = entry.get("tags") or []
        when = entry.get("when")
        refs.append(RoleRef(role, dict(entry.get("vars") or {}) | params,
                            [str(t) for t in (tags if isinstance(tags, list) else [tags])],
                            [] if when is None else (when if isinstance(when, list) else [when])))
    play_vars = item.get("vars") or {}
    if not isinstance(play_vars, dict):
        raise ProvisionError("play 'vars' must be a mapping", file=file, line=line)
    tags = item.get("tags") or []
    serial = item.get("serial")
    serial = [] if serial is None else serial if isinstance(serial, list) else [serial]
    for size in serial:
        if not re.fullmatch(r"\d+%?", str(size).strip()) or str(size).strip() in ("0", "0%"):
            raise ProvisionError(f"serial: {size!r} is not a number of hosts or a percentage", file=file,
                                 line=line)
    max_fail = item.get("max_fail_percentage")
    own: dict[str, RoleRef] = {}
    handlers = item.get("handlers") or []
    for section in ("pre_tasks", "tasks", "post_tasks"):
        tasks = item.get(section)
        if tasks is None and not (section == "tasks" and handlers):
            continue
        if not isinstance(tasks or [], list) or not isinstance(handlers, list):
            raise ProvisionError(f"play '{section}' and 'handlers' must be lists of tasks", file=file, line=line)
        role = play_tasks(str(item.get("name") or hosts), section, tasks or [],
                          handlers if section == "tasks" else [], Path(file), loader)
        own[section] = RoleRef(role, section=section)
    refs = ([own["pre_tasks"]] if "pre_tasks" in own else []) + _with_dependencies(refs) \
        + [own[s] for s in ("tasks", "post_tasks") if s in own]
    vars_files = []
    for name in item.get("vars_files") or []:
        path = base / str(name)
        data = load_yaml(path, loader.vault) if path.is_file() else None
        if not isinstance(data, dict):
            raise ProvisionError(f"vars_files: {path} " + ("is not a mapping of variables" if path.is_file()
                                                           else "not found"), file=file, line=line)
        vars_files.append(Layer(str(path), data))
    return Play(name=str(item.get("name") or hosts), hosts=str(hosts), roles=refs, vars_files=vars_files,
                vars=play_vars, become=bool(item.get("become", False)),
                tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])], file=file, line=line,
                serial=serial, max_fail_percentage=None if max_fail is None else float(max_fail),
                any_errors_fatal=bool(item.get("any_errors_fatal", False)),
                become_user=item.get("become_user"), become_method=item.get("become_method"),
                gather_facts=str(item.get("gather_facts", True)).strip().lower() not in FALSE_WORDS)
