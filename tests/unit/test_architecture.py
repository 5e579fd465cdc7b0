"""Package boundaries: every import inside kfab/ (at any depth, inside functions too) points the way
docs/architecture.md allows, and no two packages import each other, directly or round a circle."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KFAB = ROOT / "kfab"
DOC = ROOT / "docs" / "architecture.md"

# What each package (or top-level module) may import of kfab. The one table; docs/architecture.md shows it.
ALLOWED: dict[str, set[str]] = {
    "objects": set(),
    "store": set(),
    "pki": set(),
    "daemon": set(),
    "client": {"objects"},
    "machinery": {"client", "objects"},
    "api": {"objects", "store", "pki"},
    "controllers": {"machinery", "client", "objects"},
    "scheduler": {"machinery", "client", "objects"},
    "dns": {"machinery", "client", "objects", "daemon"},
    "proxy": {"machinery", "client", "objects", "daemon"},
    "ingress": {"machinery", "client", "objects", "pki", "daemon"},
    "node": {"machinery", "client", "objects", "pki", "dns", "daemon"},
    "storage_host": {"machinery", "client", "objects", "controllers", "daemon"},
    "controlplane": {"api", "controllers", "scheduler", "machinery", "client", "store", "pki", "daemon"},
    "install": {"client"},
    "provision": {"pki", "install"},
    "lab": {"provision"},
    "cache": {"provision"},
    "registry": {"provision"},
    "ops": {"provision", "client", "objects", "pki", "install"},
    "dashboard": {"ops", "machinery", "client", "objects", "daemon"},
    "cli": set(),  # only packages' `commands` modules, checked below
    "__main__": {"cli"},
}


def package_of(module: str) -> str:
    """kfab.api.server -> api; kfab.daemon -> daemon; kfab -> '' (the root package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """What one import statement names, dotted (`from kfab.api import server` -> kfab.api.server, whether server
    is a module or a name in it); relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [f"{target}.{alias.name}" for alias in node.names]


def cross_package_imports() -> list[tuple[str, str, str, str]]:
    """(source package, target package, target module, file:line) for every import between kfab's packages."""
    found = []
    for path in sorted(KFAB.rglob("*.py")):
        module = module_name(path)
        source = package_of(module)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for target in imported_modules(node, module, path.name == "__init__.py"):
                if not target.startswith("kfab."):
                    continue
                dest = package_of(target)
                if dest != source:
                    found.append((source, dest, target, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def is_commands(target: str) -> bool:
    return "commands" in target.split(".")[2:]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle in the graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_every_package_is_in_the_table():
    packages = {package_of(module_name(p)) for p in KFAB.rglob("*.py")} - {""}
    missing = sorted(packages - ALLOWED.keys())
    assert not missing, f"packages with no row in ALLOWED (and docs/architecture.md): {missing}"


def test_imports_point_the_allowed_way():
    forbidden = dict.fromkeys(f"{where}: {src} -> {dst} ({target.rsplit('.', 1)[0]})"
                              for src, dst, target, where in cross_package_imports()
                              if src != "cli" and dst not in ALLOWED.get(src, set()))
    assert not forbidden, "imports against docs/architecture.md's directions:\n" + "\n".join(forbidden)


def test_cli_imports_only_commands_modules():
    forbidden = [f"{where}: cli -> {target}" for src, _dst, target, where in cross_package_imports()
                 if src == "cli" and not is_commands(target)]
    assert not forbidden, "cli.py collects packages' `commands` modules only:\n" + "\n".join(forbidden)


def test_commands_modules_are_imported_only_by_cli():
    forbidden = [f"{where}: {src} -> {target}" for src, _dst, target, where in cross_package_imports()
                 if is_commands(target) and src not in ("cli", "__main__")]
    assert not forbidden, "a commands module parses arguments for cli.py only:\n" + "\n".join(forbidden)


def test_no_circles_between_packages():
    assert find_cycle(ALLOWED) is None, "the allowed directions themselves form a circle"
    actual: dict[str, set[str]] = defaultdict(set)
    for src, dst, _target, _where in cross_package_imports():
        actual[src].add(dst)
    cycle = find_cycle(actual)
    assert cycle is None, "packages import each other round a circle: " + " -> ".join(cycle or [])


def test_the_checker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from kfab.api import server\n    import kfab.node.agent\n")
    names = [t for node in ast.walk(tree) for t in imported_modules(node, "kfab.objects.x", False)]
    assert names == ["kfab.api.server", "kfab.node.agent"]
    relative = ast.parse("from ..client import rt_of\n").body[0]
    assert imported_modules(relative, "kfab.controllers.base", False) == ["kfab.client.rt_of"]
    assert is_commands("kfab.dns.commands") and not is_commands("kfab.controllers.manager.run")


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_document_shows_the_same_table():
    """docs/architecture.md's 'may import' table lists exactly ALLOWED."""
    rows = re.findall(r"^\| `([\w_]+)` \| ([^|]*)\|$", DOC.read_text().split("## Allowed import directions")[1],
                      re.M)
    documented = {name: {t.strip(" `") for t in targets.split(",") if t.strip(" `—-")} for name, targets in rows}
    assert documented == ALLOWED
