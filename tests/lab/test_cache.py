"""Install nights: `kfab cache up` runs apt-cacher-ng on this machine and role common's `package_proxy` sends
the lab hosts' apt through it. One host installs a package (fetched from the mirror once), a second host
installs the same package and gets it from the cache: the cache's transfer log shows the hit."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kfab.cache.acng import read_transfers
from tests.lab.conftest import LAB_INVENTORY

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
PACKAGE = "hello"          # small, and nothing else in the lab installs it
FIRST, SECOND = "kt2", "kt3"


def kfab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          stdin=subprocess.DEVNULL)


def free_port(address: str) -> int:
    """A free port apt-cacher-ng can bind (it fails on ports above 32767, so not an ephemeral one)."""
    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port on {address} in 20000-32767")


@pytest.fixture(scope="module")
def cache(lab, tmp_path_factory):
    """apt-cacher-ng listening on the lab network's gateway (this machine, as the hosts see it) only."""
    state = tmp_path_factory.mktemp("package-cache")
    gateway = lab.lab.spec.gateway
    port = free_port(gateway)
    started = kfab("cache", "up", "--bind", gateway, "--port", str(port), "--state-dir", str(state))
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"http://{gateway}:{port}", state
    finally:
        stopped = kfab("cache", "down", "--state-dir", str(state))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    """Role common's package tasks alone (the product's path: the proxy file, then apt installs)."""
    base = tmp_path_factory.mktemp("cache-play")
    (base / "roles").symlink_to(REPO / "roles")
    path = base / "cache.yml"
    path.write_text("- name: Packages through the cache\n  hosts: all\n  become: true\n  roles:\n    - common\n")
    return path


def install_through(lab, playbook, host: str, proxy: str) -> subprocess.CompletedProcess:
    variables = {"package_proxy": proxy, "common_packages": [], "common_extra_packages": [PACKAGE] if proxy else []}
    return kfab("up", "-i", str(lab.inventory), str(playbook), "--limit", host, "--tags", "packages",
                "-e", json.dumps(variables))


@pytest.fixture(scope="module")
def installed(lab, cache, playbook):
    proxy, state = cache
    for host in (FIRST, SECOND):
        lab.ssh(host, f"apt-get -q -y purge {PACKAGE} >/dev/null; apt-get clean")
    try:
        runs = [install_through(lab, playbook, host, proxy) for host in (FIRST, SECOND)]
        yield runs, read_transfers(state / "log" / "apt-cacher.log")
    finally:
        for host in (FIRST, SECOND):
            install_through(lab, playbook, host, "")    # role common removes the proxy file again
            lab.ssh(host, f"apt-get -q -y purge {PACKAGE} >/dev/null", check=False)


def test_hosts_install_a_package_through_the_cache(lab, cache, installed):
    runs, _ = installed
    for host, run in zip((FIRST, SECOND), runs):
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Hello, world!" in lab.ssh(host, PACKAGE).stdout
        assert cache[0] in lab.ssh(host, "cat /etc/apt/apt.conf.d/01kfab-proxy").stdout


def test_second_host_gets_the_package_from_the_cache(lab, installed):
    _, transfers = installed
    debs = [path for path in transfers.served if path.endswith(".deb") and f"/{PACKAGE}_" in path]
    assert len(debs) == 1, transfers.served
    deb = debs[0]
    # fetched from the mirror once, served to both hosts (by their lab addresses)
    assert transfers.fetched.get(deb) == 1
    assert sorted(transfers.served[deb]) == sorted([lab.hosts[FIRST], lab.hosts[SECOND]])


def test_status_counts_the_hits(cache, installed):
    _, state = cache
    status = kfab("cache", "status", "--state-dir", str(state))
    assert status.returncode == 0, status.stdout + status.stderr
    hits = int(status.stdout.rsplit("served from the cache:", 1)[1].split()[0])
    assert hits >= 1


def test_bad_mirror_is_refused_and_nothing_starts(tmp_path):
    result = kfab("cache", "up", "--bind", "127.0.0.1", "--port", str(free_port("127.0.0.1")),
                  "--state-dir", str(tmp_path), "--mirror", "ftp.debian.org/debian")
    assert result.returncode == 1
    assert "--mirror 'ftp.debian.org/debian'" in result.stderr and "http://" in result.stderr
    assert not (tmp_path / "apt-cacher-ng.pid").exists()


def test_port_apt_cacher_ng_cannot_bind_is_refused(tmp_path):
    result = kfab("cache", "up", "--bind", "127.0.0.1", "--port", "40000", "--state-dir", str(tmp_path))
    assert result.returncode == 1 and "--port 40000" in result.stderr and "1-32767" in result.stderr
    assert not (tmp_path / "apt-cacher-ng.pid").exists()


def test_inventory_without_package_proxy_is_refused(tmp_path):
    result = kfab("cache", "up", "-i", str(LAB_INVENTORY), "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"{LAB_INVENTORY}: no package_proxy set" in result.stderr
    assert not (tmp_path / "apt-cacher-ng.pid").exists()
