"""Where a task finds a file of the control machine (template's and copy's `src`, lookup('template'|'file')):
Ansible's search path, so a role written for Ansible finds its files unchanged and roles share the play
directory's templates/ and files/ (the design card's top-level templates/).

As ansible-core 2.18 does it (Task.get_search_path, then DataLoader.path_dwim_relative_stack): the stack is
the task's role, the roles that included it or depend on it (nearest first), then the directory of the task's
file; each entry is tried with the kind's subdirectory (templates/ or files/) and then bare, and last the play
file's directory the same way. For `template: src=X` in roles/r/tasks/main.yml of site.yml:

    roles/r/templates/X, roles/r/X, roles/r/tasks/templates/X, roles/r/tasks/X, templates/X, X

so a role's own template shadows the shared one of the same name. An absolute (or ~) source is taken as is."""

from __future__ import annotations

import os
from pathlib import Path

from kfab.provision.errors import ProvisionError


def task_stack(role_paths: list[Path], task_dir: Path) -> list[Path]:
    """Ansible's Task.get_search_path: the role, the roles that included it or depend on it, then the
    directory of the task's file (once)."""
    return list(role_paths) + ([task_dir] if task_dir not in role_paths else [])


def candidates(stack: list[Path], play_dir: Path, subdir: str, source: str, is_role: bool = False) -> list[Path]:
    """Every path tried for `source`, in order (Ansible's list less its repeats). `is_role`: a lookup in a
    role's task (Ansible passes it for lookups only)."""
    if source.startswith(("/", "~")):
        return [Path(os.path.expanduser(source))]
    found: list[Path] = []
    # ansible-core means to skip `subdir/` for a source that starts with it (`src: templates/x.j2`), but its
    # test compares bytes with str and never holds: templates/templates/x.j2 is tried too. So here.
    for path in stack:
        # A task file in a subdirectory of a role's tasks/ (tasks/sub/x.yml) also looks in the role itself.
        if path.parent.name == "tasks" and (is_role or _is_role(path)):
            found += [path.parent.parent / subdir / source, path.parent / source]
        found += [path / subdir / source, path / source]
    found += [play_dir / subdir / source, play_dir / source]
    return list(dict.fromkeys(found))


def _is_role(path: Path) -> bool:
    """ansible-core's 'imperfect role detection' (DataLoader._is_role)."""
    names = ("main.yml", "main.yaml", "main")
    untasked = path.name == "tasks" and any((path / n).exists() for n in names)
    return untasked or any((base / sub / n).exists() for base in (path, path.parent) for sub in ("tasks", "meta")
                           for n in names)


def find(stack: list[Path], play_dir: Path, subdir: str, source: str, is_role: bool = False) -> Path:
    """The first candidate that exists; else Ansible's error naming every path searched."""
    tried = candidates(stack, play_dir, subdir, source, is_role)
    for path in tried:
        if path.exists():
            return path.absolute()
    raise ProvisionError(f"Could not find or access '{source}'\nSearched in:\n\t"
                         + "\n\t".join(str(p) for p in tried) + " on the control machine")


def jinja_search_path(stack: list[Path], play_dir: Path, template: Path) -> list[Path]:
    """Where a template's {% include %}/{% extends %}/{% import %} look (Ansible's template action): each
    entry of the stack, then the play file's directory, then the template's own directory; templates/
    first, then the entry itself."""
    paths: list[Path] = []
    for path in [*stack, play_dir, template.parent]:
        paths += [path / "templates", path]
    return list(dict.fromkeys(paths))
