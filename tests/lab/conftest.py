"""Lab fixtures: one shared lab of 3 real hosts per test session (tests/lab/inventory/lab.yml).

`lab` brings the hosts up once per session and tears them down at the end. Several pytest sessions on
this machine may want the same lab at once: each holds a lease (a file named after its PID), the first
one starts from fresh hosts, and only the last one to leave takes the lab down.
Environment: KFAB_LAB_KEEP=1 leaves the lab running after the session (to look at the hosts).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kfab.lab import Lab
from kfab.lab.state import file_lock

LAB_DIR = Path(__file__).parent
LAB_INVENTORY = LAB_DIR / "inventory" / "lab.yml"


def pytest_collection_modifyitems(config, items):
    # Everything under tests/lab/ needs the lab; `-m "not lab"` deselects it.
    for item in items:
        if LAB_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


_SETUP_DIAGNOSED: set = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A failed lab test carries the hosts' journals, Podman state and Events into the log (tests/lab/diagnostics.py):
    # a failure that depends on load must be explainable from one CI log.
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        if call.when == "setup":
            # A module fixture that failed fails every later test of the module with the same error: once is enough.
            key = getattr(item, "module", None)
            if key in _SETUP_DIAGNOSED:
                return
            _SETUP_DIAGNOSED.add(key)
        from tests.lab.diagnostics import collect
        try:
            text = collect(getattr(item, "funcargs", {}), getattr(item, "module", None))
        except Exception as exc:  # noqa: BLE001 - diagnostics must never hide the failure itself
            text = f"(lab diagnostics failed: {exc!r})"
        if text:
            report.sections.append(("lab diagnostics", text))


def fresh_lab(inventory: Path):
    """A module fixture's body: the inventory's lab from fresh hosts (whatever a killed run left behind),
    yielded as LabHosts, taken down afterwards unless KFAB_LAB_KEEP=1."""
    lab = Lab(inventory)
    lab.down()
    lab.up()
    try:
        yield LabHosts(lab)
    finally:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            lab.down()


class LabHosts:
    """What a lab test gets: the inventory path, host names -> IPs, and SSH to a host."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.inventory: Path = lab.spec.inventory
        self.hosts: dict[str, str] = lab.hosts
        self.key_file: Path = lab.spec.key_file
        self.known_hosts: Path = lab.spec.known_hosts_file

    def ssh(self, host: str, cmd: str, check: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        """Run `cmd` (a shell command line) on `host` as root; stdout/stderr as text.

        With check=True a non-zero exit fails the test with the command's output."""
        proc = self.lab.ssh(host, cmd, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {host} {cmd!r} exited {proc.returncode}:\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot): tells a live session from a reused PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _live_leases(lease_dir: Path) -> list[int]:
    """PIDs of other pytest sessions using this lab; leases of sessions that died are dropped."""
    live = []
    for lease in lease_dir.glob("*"):
        try:
            pid = int(lease.name)
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        if _start_time(pid) is not None and _start_time(pid) == lease.read_text().strip():
            live.append(pid)
        else:
            lease.unlink(missing_ok=True)
    return live


@pytest.fixture(scope="session")
def lab():
    lab = Lab(LAB_INVENTORY)
    lease_dir = lab.spec.state_dir / "sessions"
    lease_dir.mkdir(parents=True, exist_ok=True)
    lock = lab.spec.state_dir / "sessions.lock"
    with file_lock(lock):
        if not _live_leases(lease_dir):
            lab.down()  # fresh hosts for this session, whatever a killed session left behind
        lab.up()
        (lease_dir / str(os.getpid())).write_text(_start_time(os.getpid()) or "")
    try:
        yield LabHosts(lab)
    finally:
        with file_lock(lock):
            (lease_dir / str(os.getpid())).unlink(missing_ok=True)
            if not _live_leases(lease_dir) and os.environ.get("KFAB_LAB_KEEP") != "1":
                lab.down()


@pytest.fixture(scope="session")
def site():
    """The whole cluster on the 10.91 lab (tests/lab/inventory/up.yml), installed once by `kfab up`
    (tests/lab/site_cluster.py): u1 control plane + etcd + registry, u2/u3 workers."""
    from tests.lab.site_cluster import Site
    cluster = Site().start()
    try:
        yield cluster
    finally:
        cluster.stop()
