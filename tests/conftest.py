import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Commands the tests run (kfab, kubectl) come from the project's venv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# The roles' molecule scenarios keep their testinfra tests in roles/<role>/molecule/default/tests: `molecule
# verify` runs them against the scenario's hosts (tests/lab/test_molecule_roles.py runs one). The link
# tests/lab/playbooks/roles (for the lab playbooks) would let the suite collect them too, with no scenario up.
collect_ignore = ["lab/playbooks/roles"]


# scripts/test runs the suite in parallel processes (pytest-xdist, --dist loadgroup). A lab is one set of
# containers/VMs on one network: every test that touches the same lab must run in the same process, and a
# module's own lab fixture must be made once. So each lab module is one group, and the modules sharing a
# session lab (`lab`: kt1-3, `site`: the whole-site 10.91 lab) share one group; an API module is one group
# too; unit/store tests are free.
SHARED_LAB_FIXTURES = ("lab", "site")


def _uses_session_fixture(item, name: str) -> bool:
    # A module may define its own fixture of the same name (module scope): that one is its own lab.
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).get(name)
    return bool(defs) and defs[-1].scope == "session"


# tryfirst: xdist's own (plain) hook reads the xdist_group marks and would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):

    groups: dict[str, str] = {}
    for item in items:
        path = Path(str(item.fspath))
        parts = path.relative_to(REPO).parts[:2]
        if "api" in parts:
            # An API module starts its server once (module fixture) and its tests may build on each other
            # (the audit log's namespace): split across processes, each would start its own, without the others'.
            groups.setdefault(str(path.relative_to(REPO)), str(path.relative_to(REPO)))
            continue
        if "lab" not in parts:
            continue
        module = str(path.relative_to(REPO))
        shared = next((f for f in SHARED_LAB_FIXTURES if _uses_session_fixture(item, f)), None)
        if shared and groups.get(module, module) == module:
            groups[module] = f"lab-{shared}"
        groups.setdefault(module, module)
    for item in items:
        group = groups.get(str(Path(str(item.fspath)).relative_to(REPO)))
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
