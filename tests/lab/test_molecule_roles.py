"""Role scenarios the molecule way (docs/molecule.md): molecule itself runs a role's `molecule/default`
scenario — create/destroy by `kfab lab`, converge by `kfab up` of the role, idempotence from kfab's recap,
verify by testinfra — as a role author runs it, and each of its checks can fail.

The suite runs the scenarios of the roles that no other lab test covers. site.yml's roles run on the site,
HA and ops labs, the storage roles on the storage labs; role package-cache (a cache host in the inventory,
group package_cache) is in no lab inventory — `kfab cache up` runs apt-cacher-ng on the control machine
without it — so its scenario runs here. Lab: network kfabmpc, 10.90.0.112/28 (its scenario's inventory.yml)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kfab.lab import Lab

REPO = Path(__file__).resolve().parents[2]
ROLE = "package-cache"
SCENARIO = REPO / "roles" / ROLE / "molecule" / "default"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A row of kfab's recap as converge prints it (a list item of its output): host, OK, CHANGED, ...
RECAP_ROW = re.compile(r'"([\w.-]+) +\d+ +(\d+) +\d+')


def molecule(*args: str) -> subprocess.CompletedProcess:
    # molecule runs ansible-playbook, ansible-config and pytest from PATH: tests/conftest.py puts the
    # project's venv first, as `source .venv/bin/activate` does for a role author.
    # A wide "terminal" so that molecule's boxes do not wrap the lines the checks below look for.
    proc = subprocess.run(["molecule", *args], cwd=REPO / "roles" / ROLE, capture_output=True, text=True,
                          env=os.environ | {"COLUMNS": "300"}, timeout=900)
    proc.stdout = ANSI.sub("", proc.stdout + proc.stderr)
    return proc


def changed(output: str) -> dict[str, int]:
    return {host: int(count) for host, count in RECAP_ROW.findall(output)}


@pytest.fixture
def lab():
    # From fresh hosts whatever an earlier run left (`molecule test --destroy never` skips its first destroy
    # too, and would reuse converged hosts).
    molecule("destroy").check_returncode()
    yield Lab(SCENARIO / "inventory.yml")
    molecule("destroy")


def test_molecule_test_of_uncovered_role(lab):
    """`molecule test` as a role author runs it: every step passes; kfab's recap counts changes on the first
    converge and none on the second. The hosts stay up for the failing checks (destroy comes at their end)."""
    proc = molecule("test", "--destroy", "never")
    assert proc.returncode == 0, proc.stdout[-6000:]
    for step in ("create", "converge", "idempotence", "verify"):
        assert f"{step}: Executed: Successful" in proc.stdout, (step, proc.stdout[-6000:])
    rows = RECAP_ROW.findall(proc.stdout)
    first, second = rows[:len(lab.hosts)], rows[len(lab.hosts):]
    assert {h for h, _ in first} == set(lab.hosts) and sum(int(c) for _, c in first) > 0, rows
    assert {h for h, _ in second} == set(lab.hosts) and sum(int(c) for _, c in second) == 0, rows

    # The cache stops on its host: testinfra's verify fails on it, and molecule's idempotence step fails
    # because kfab's recap counts the change that starts it again.
    cache_host = "mpc1"
    lab.ssh(cache_host, "systemctl stop apt-cacher-ng").check_returncode()
    broken = molecule("verify")
    assert broken.returncode != 0, broken.stdout[-4000:]
    assert "FAILED tests/test_package_cache.py::test_apt_cacher_ng_runs_and_listens" in broken.stdout, \
        broken.stdout[-4000:]
    again = molecule("idempotence")
    assert again.returncode != 0, again.stdout[-4000:]
    assert "Idempotence test failed" in again.stdout and "=> kfab up converge.kfab.yml" in again.stdout, \
        again.stdout[-4000:]
    assert changed(again.stdout)[cache_host] == 1, again.stdout[-4000:]
