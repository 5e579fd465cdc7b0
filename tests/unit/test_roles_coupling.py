"""Roles talk to each other through handler topics (notify/listen), never by reading a result another role
registered: each `register:` name is used only inside the role that registers it."""

import re
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def role_files(role: Path) -> list[Path]:
    return sorted(p for sub in ("tasks", "handlers") for p in (role / sub).glob("*.yml"))


def registered(node) -> set[str]:
    """Every `register:` name in a task file's YAML (blocks, rescue and always included)."""
    if isinstance(node, list):
        return set().union(*(registered(item) for item in node)) if node else set()
    if isinstance(node, dict):
        names = {node["register"]} if isinstance(node.get("register"), str) else set()
        return names.union(*(registered(v) for v in node.values()))
    return set()


def test_no_role_reads_a_result_another_role_registered():
    roles = [r for r in sorted(ROLES.iterdir()) if r.is_dir()]
    owner = {name: role.name for role in roles for f in role_files(role)
             for name in registered(yaml.safe_load(f.read_text()))}
    assert "worker_running" in owner, "the check found no registered results: is roles/ where it looks?"
    crossings = [f"{f.relative_to(ROLES)}: reads {name}, registered by role {owner[name]}"
                 for role in roles for f in role_files(role) for name in owner
                 if owner[name] != role.name and re.search(rf"\b{name}\b", f.read_text())]
    assert not crossings, "use a handler topic instead:\n" + "\n".join(crossings)


def test_the_check_finds_a_crossing():
    text = "- service: {name: x, state: restarted}\n  when: kfab_installed.changed\n"
    assert re.search(r"\bkfab_installed\b", text)
    assert registered(yaml.safe_load("- block:\n    - command: a\n      register: inner\n  register: outer\n")) == {
        "inner", "outer"}
