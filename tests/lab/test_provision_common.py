"""`kfab up` of role `common` on the real lab hosts: what it installs (checked over SSH with
pytest-testinfra), that a second run changes nothing, and what --check, --diff, --limit and --tags do."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[2]


def kfab_up(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["kfab", "up", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def recap(output: str) -> dict[str, dict[str, int]]:
    """The recap table as {host: {ok, changed, failed, unreachable, skipped}}."""
    table = output.split("\nRECAP\n", 1)[1].splitlines()
    columns = [c.lower() for c in table[0].split()[1:]]
    rows = {}
    for line in table[1:]:
        cells = re.sub(r"\x1b\[[0-9;]*m", "", line).split()
        if len(cells) == len(columns) + 1:
            rows[cells[0]] = dict(zip(columns, map(int, cells[1:])))
    return rows


@pytest.fixture(scope="session")
def provisioned(lab):
    """The lab after one `kfab up` of site.yml (role common), shared by every test of this file."""
    first = kfab_up("-i", str(lab.inventory))
    assert first.returncode == 0, first.stdout + first.stderr
    return first


def host(lab, name):
    # ssh with the lab's known_hosts, strictly; ControlPersist 0 leaves no master process behind.
    return testinfra.get_host(
        f"ssh://root@{lab.hosts[name]}", ssh_identity_file=str(lab.key_file), controlpersist=0,
        ssh_extra_args=f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes -o BatchMode=yes")


def test_first_run_installs_common_on_every_host(lab, provisioned):
    rows = recap(provisioned.stdout)
    assert set(rows) == set(lab.hosts)
    for name, row in rows.items():
        assert row["failed"] == 0 and row["unreachable"] == 0, name
        assert row["changed"] > 0, name


@pytest.mark.parametrize("name", ["kt1", "kt2", "kt3"])
def test_host_has_packages_podman_settings_sysctls_and_names(lab, provisioned, name):
    h = host(lab, name)
    for package in ("podman", "runc", "iptables", "nftables", "curl", "ca-certificates"):
        assert h.package(package).is_installed, package
    conf = h.file("/etc/containers/containers.conf")
    assert conf.mode == 0o644 and conf.user == "root"
    assert 'runtime = "runc"' in conf.content_string
    assert '"nofile=10000:10000"' in conf.content_string and '"nproc=4096:4096"' in conf.content_string
    assert h.sysctl("net.ipv4.ip_forward") == 1
    assert "net.ipv4.ip_forward = 1" in h.file("/etc/sysctl.d/90-kfab.conf").content_string
    assert h.check_output("hostname") == name
    assert h.file("/etc/hostname").content_string == f"{name}\n"
    hosts = h.file("/etc/hosts").content_string
    for other, ip in lab.hosts.items():
        assert re.search(rf"^{re.escape(ip)}\s+{other}$", hosts, re.M), (other, hosts)
    assert h.run("getent hosts kt3").stdout.split()[0] == lab.hosts["kt3"]


def test_podman_runs_a_container_with_runc(lab, provisioned):
    assert lab.ssh("kt2", "podman info --format '{{.Host.OCIRuntime.Name}}'").stdout.strip() == "runc"
    # No image registry is reachable here: build a busybox image from Debian's static busybox.
    lab.ssh("kt2", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "
                   "busybox-static >/dev/null && "
                   "rm -rf /root/bbimg && mkdir -p /root/bbimg/bin && cp /bin/busybox /root/bbimg/bin/ && "
                   "tar -C /root/bbimg -c . | podman import - localhost/kfab-busybox >/dev/null")
    run = lab.ssh("kt2", "podman run --rm localhost/kfab-busybox /bin/busybox echo hello-from-runc")
    assert run.stdout.strip() == "hello-from-runc"


def test_second_run_reports_nothing_changed(lab, provisioned):
    again = kfab_up("-i", str(lab.inventory))
    assert again.returncode == 0, again.stdout + again.stderr
    rows = recap(again.stdout)
    assert set(rows) == set(lab.hosts)
    assert all(row["changed"] == 0 and row["failed"] == 0 for row in rows.values()), again.stdout


def test_check_mode_reports_the_change_but_changes_nothing(lab, provisioned):
    before = lab.ssh("kt1", "cat /etc/containers/containers.conf").stdout
    result = kfab_up("-i", str(lab.inventory), "--check", "-e", "common_podman_runtime=crun")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = recap(result.stdout)
    assert all(row["changed"] == 1 for row in rows.values()), result.stdout
    assert "changed kt1: common : Configure Podman" in result.stdout
    assert lab.ssh("kt1", "cat /etc/containers/containers.conf").stdout == before


def test_diff_shows_what_a_template_would_change(lab, provisioned):
    result = kfab_up("-i", str(lab.inventory), "--check", "--diff", "--limit", "kt3",
                     "-e", "common_podman_runtime=crun")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--- before: /etc/containers/containers.conf" in result.stdout
    assert '-runtime = "runc"' in result.stdout and '+runtime = "crun"' in result.stdout


def test_limit_and_tags_select_hosts_and_tasks(lab, provisioned):
    result = kfab_up("-i", str(lab.inventory), "--limit", "workers:!kt3", "--tags", "sysctl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(recap(result.stdout)) == ["kt2"]
    assert "Enable forwarding" in result.stdout and "Install base packages" not in result.stdout


def test_extra_vars_change_what_is_installed(lab, provisioned):
    changed = kfab_up("-i", str(lab.inventory), "--limit", "kt1", "-e", '{"common_extra_packages": ["jq"]}')
    assert changed.returncode == 0 and recap(changed.stdout)["kt1"]["changed"] == 1, changed.stdout
    assert host(lab, "kt1").package("jq").is_installed
