"""A play file (site.yml): plays that map host groups to roles, loaded and checked as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kfab.provision.errors import ProvisionError
from kfab.provision.roles import Role, Task, load_role
from kfab.provision.yamlfile import line_of, load_yaml

PLAY_KEYS = ("name", "hosts", "roles", "vars", "become", "tags", "gather_facts")
ROLE_REF_KEYS = ("role", "vars", "tags")


@dataclass
class RoleRef:
    role: Role
    vars: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


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

    def handlers(self) -> dict[str, Task]:
        found: dict[str, Task] = {}
        for ref in self.roles:
            for handler in ref.role.handlers:
                found.setdefault(handler.name, handler)
        return found


def load_playbook(path: str | Path) -> list[Play]:
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ProvisionError("play file not found", file=file)
    data = load_yaml(path)
    if not isinstance(data, list) or not data:
        raise ProvisionError("a play file is a list of plays ('- hosts: <group>' with 'roles: [...]')",
                             file=file, line=line_of(data))
    base = path.parent
    roles_cache: dict[str, Role] = {}
    plays = [_play(item, file, base, roles_cache) for item in data]
    for play in plays:
        handlers = play.handlers()
        for ref in play.roles:
            for task in ref.role.tasks + ref.role.handlers:
                for name in task.notify:
                    if name not in handlers:
                        raise ProvisionError(f"notifies '{name}', but no role of this play has a handler "
                                             f"by that name", file=task.file, line=task.line, task=task.name)
    return plays


def _play(item, file: str, base: Path, cache: dict[str, Role]) -> Play:
    line = line_of(item)
    if not isinstance(item, dict):
        raise ProvisionError("a play must be a mapping", file=file, line=line)
    for key in item:
        if key not in PLAY_KEYS:
            hint = " (kfab plays list roles; put tasks in a role)" if key == "tasks" else ""
            raise ProvisionError(f"unknown play key '{key}'{hint}", file=file, line=line)
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
        if not isinstance(entry, dict) or "role" not in entry:
            raise ProvisionError("a role entry is a name or a mapping with 'role:'", file=file, line=line)
        for key in entry:
            if key not in ROLE_REF_KEYS:
                raise ProvisionError(f"unknown role entry key '{key}'", file=file, line=line_of(entry) or line)
        name = str(entry["role"])
        if name not in cache:
            try:
                cache[name] = load_role(name, base / "roles", base / "templates")
            except ProvisionError as exc:
                raise exc.located(file=file, line=line) from None
        tags = entry.get("tags") or []
        refs.append(RoleRef(cache[name], dict(entry.get("vars") or {}),
                            [str(t) for t in (tags if isinstance(tags, list) else [tags])]))
    play_vars = item.get("vars") or {}
    if not isinstance(play_vars, dict):
        raise ProvisionError("play 'vars' must be a mapping", file=file, line=line)
    tags = item.get("tags") or []
    return Play(name=str(item.get("name") or hosts), hosts=str(hosts), roles=refs, vars=play_vars,
                become=bool(item.get("become", False)),
                tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])], file=file, line=line)
