"""`kfab lab up|down|status` lifecycle on a small lab of its own (tests/lab/inventory/lifecycle.yml).

Never touches the session lab (`kfabtest`): this lab has its own network, subnet and host names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from kfab.lab import Lab
from kfab.lab.image import ensure_image
from tests import waiting

pytestmark = pytest.mark.lab

INVENTORY = Path(__file__).parent / "inventory" / "lifecycle.yml"


def kfab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["kfab", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)


def container_id(name: str) -> str | None:
    proc = podman("container", "inspect", "--format", "{{.Id}}", name)
    return proc.stdout.strip() if proc.returncode == 0 else None


def nat_rules(tag: str) -> list[str]:
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if tag in line]


def wait_until(condition, what: str, timeout: float = 60):
    return waiting.wait_until(what, condition, timeout, 0.05)


@pytest.fixture
def life():
    """The lifecycle lab, taken down before and after each test."""
    lab = Lab(INVENTORY)
    lab.down()
    yield lab
    lab.down()


def assert_ready(lab: Lab):
    rows = lab.status()
    assert [r.name for r in rows] == ["lf1", "lf2"]
    assert all(r.ready for r in rows), rows
    for name in lab.hosts:
        assert lab.ssh(name, "hostname").stdout.strip() == name


def test_up_starts_every_host_and_a_second_up_changes_nothing(life):
    first = kfab("lab", "up", "-i", str(INVENTORY))
    assert first.returncode == 0, first.stderr
    assert_ready(life)
    ids = {name: container_id(name) for name in life.hosts}
    known_hosts = life.spec.known_hosts_file.read_text()

    second = kfab("lab", "up", "-i", str(INVENTORY))
    assert second.returncode == 0, second.stderr
    assert "already up" in second.stdout
    assert {name: container_id(name) for name in life.hosts} == ids
    assert life.spec.known_hosts_file.read_text() == known_hosts
    assert len(nat_rules("kfab-lab:kfablife")) == 1

    status = kfab("lab", "status", "-i", str(INVENTORY))
    assert status.returncode == 0
    for name, ip in life.hosts.items():
        assert any(line.split()[:4] == [name, "container", "yes", ip] and line.endswith("ok")
                   for line in status.stdout.splitlines())


def test_fresh_hosts_boot_systemd_cleanly_like_a_minimal_vm(life):
    # On this lab rather than the session lab, which other tests provision.
    life.up()
    for name in life.hosts:
        state = life.ssh(name, "systemctl is-system-running --wait").stdout.strip()
        failed = life.ssh(name, "systemctl --failed --no-legend --plain").stdout.strip()
        assert state == "running", f"{name}: {state}; failed units: {failed}"
        assert life.ssh(name, "systemctl is-active systemd-networkd").stdout.strip() != "active"
        assert life.ssh(name, "command -v podman").returncode != 0  # the roles install it
        assert life.ssh(name, "python3 -c 'print(1)'").stdout.strip() == "1"


def test_down_removes_containers_network_and_rule_and_up_works_again(life):
    life.up()
    assert nat_rules("kfab-lab:kfablife")
    down = kfab("lab", "down", "-i", str(INVENTORY))
    assert down.returncode == 0, down.stderr
    for name in life.hosts:
        assert container_id(name) is None
    assert podman("network", "exists", "kfablife").returncode != 0
    assert nat_rules("kfab-lab:kfablife") == []
    assert not life.spec.known_hosts_file.exists()
    status = kfab("lab", "status", "-i", str(INVENTORY))
    assert status.returncode != 0 and "no answer" in status.stdout
    assert "nothing to remove" in kfab("lab", "down", "-i", str(INVENTORY)).stdout

    assert kfab("lab", "up", "-i", str(INVENTORY)).returncode == 0
    assert_ready(life)


def test_up_after_a_run_killed_midway_brings_every_host_up(life):
    proc = subprocess.Popen(["kfab", "lab", "up", "-i", str(INVENTORY)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: container_id("lf1") is not None, "the killed run to create lf1")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    up = kfab("lab", "up", "-i", str(INVENTORY))
    assert up.returncode == 0, up.stderr
    assert_ready(life)
    assert len(nat_rules("kfab-lab:kfablife")) == 1


def test_up_copes_with_stopped_hosts_duplicate_rules_and_a_stale_network(life):
    life.up()
    old_id = container_id("lf1")
    assert podman("kill", "lf1").returncode == 0       # a host left stopped
    rule = ["-s", "10.80.0.0/24", "-d", "10.244.0.0/16", "-m", "comment",
            "--comment", "kfab-lab:kfablife", "-j", "RETURN"]
    for _ in range(2):                                  # the rule inserted by several killed runs
        subprocess.run(["iptables", "-w", "-t", "nat", "-I", "POSTROUTING", "1", *rule], check=True)
    assert len(nat_rules("kfab-lab:kfablife")) == 3

    assert kfab("lab", "up", "-i", str(INVENTORY)).returncode == 0
    assert_ready(life)
    assert container_id("lf1") == old_id                # booted again with its disk, not replaced
    assert len(nat_rules("kfab-lab:kfablife")) == 1

    # A network left from an older lab with another subnet, and a created-but-never-started host.
    life.down()
    image = ensure_image()
    assert podman("network", "create", "--subnet", "10.80.5.0/24", "--label", "io.kfab.lab=kfablife",
                  "kfablife").returncode == 0
    assert podman("create", "--name", "lf2", "--label", "io.kfab.lab=kfablife", image).returncode == 0
    assert kfab("lab", "up", "-i", str(INVENTORY)).returncode == 0
    assert_ready(life)
    subnets = json.loads(podman("network", "inspect", "kfablife").stdout)[0]["subnets"]
    assert [s["subnet"] for s in subnets] == ["10.80.0.0/24"]


def test_up_leaves_a_container_it_did_not_make_alone(life):
    image = ensure_image()
    assert podman("create", "--name", "lf1", image).returncode == 0  # someone else's "lf1"
    try:
        up = kfab("lab", "up", "-i", str(INVENTORY))
        assert up.returncode == 1
        assert "lf1" in up.stderr and "not a host of lab" in up.stderr
        assert container_id("lf1") is not None
        assert podman("network", "exists", "kfablife").returncode != 0
        assert container_id("lf2") is None
    finally:
        podman("rm", "-f", "lf1")


def test_up_after_the_lab_key_was_lost_authorises_the_new_key(life):
    life.up()
    old_public = Path(str(life.spec.key_file) + ".pub").read_text()
    life.spec.key_file.unlink()
    up = kfab("lab", "up", "-i", str(INVENTORY))
    assert up.returncode == 0, up.stderr
    assert Path(str(life.spec.key_file) + ".pub").read_text() != old_public
    assert_ready(life)


def reaches(lab: Lab, src: str, dst_ip: str) -> bool:
    """Whether `src` opens a TCP connection to dst_ip:22 (run through Podman: it works while src is cut off)."""
    proc = podman("exec", src, "timeout", "3", "bash", "-c", f"</dev/tcp/{dst_ip}/22")
    return proc.returncode == 0


def ssh_greets(src: str, dst_ip: str) -> bool:
    """Whether sshd on dst_ip sends its banner to `src` within 2 s (a frozen host's kernel still takes the
    connection; its frozen sshd says nothing)."""
    proc = podman("exec", src, "timeout", "4", "bash", "-c",
                  f"exec 3<>/dev/tcp/{dst_ip}/22 && read -t 2 line <&3 && echo \"$line\"")
    return proc.stdout.startswith("SSH-")


def test_stop_start_and_restart_keep_the_disk_and_up_brings_back_without_replacing(life):
    life.up()
    lf2 = life.hosts["lf2"]
    # A file on its disk, and an enabled unit that marks each boot in /run (a tmpfs: gone at power-off).
    unit = "[Service]\nType=oneshot\nExecStart=/usr/bin/touch /run/booted\n[Install]\nWantedBy=multi-user.target\n"
    assert life.ssh("lf2", f"echo kept > /root/marker && printf '{unit}' > /etc/systemd/system/booted.service"
                           " && systemctl enable booted.service").returncode == 0
    old_id = container_id("lf2")

    stop = kfab("lab", "stop", "lf2", "-i", str(INVENTORY))
    assert stop.returncode == 0 and "stopped (disk kept)" in stop.stdout, stop.stderr
    status = kfab("lab", "status", "-i", str(INVENTORY))
    assert status.returncode == 3 and any(line.split()[:5] == ["lf2", "container", "no", lf2, "stopped"]
                                          for line in status.stdout.splitlines()), status.stdout
    assert "was stopped already" in kfab("lab", "stop", "lf2", "-i", str(INVENTORY)).stdout

    start = kfab("lab", "start", "lf2", "-i", str(INVENTORY))
    assert start.returncode == 0, start.stderr
    assert life.ssh("lf2", "cat /root/marker").stdout.strip() == "kept"
    assert life.ssh("lf2", "systemctl is-system-running --wait").stdout.strip() == "running"
    assert life.ssh("lf2", "test -e /run/booted").returncode == 0     # enabled units started at boot

    restart = kfab("lab", "restart", "--kill", "lf2", "-i", str(INVENTORY))   # a power cut and back
    assert restart.returncode == 0, restart.stderr
    assert life.ssh("lf2", "cat /root/marker").stdout.strip() == "kept"
    assert life.ssh("lf2", "systemctl is-system-running --wait && test -e /run/booted").returncode == 0
    assert container_id("lf2") == old_id

    assert kfab("lab", "stop", "--kill", "lf2", "-i", str(INVENTORY)).returncode == 0
    up = kfab("lab", "up", "-i", str(INVENTORY))
    assert up.returncode == 0 and "brought back: lf2" in up.stdout, up.stdout + up.stderr
    assert_ready(life)
    assert container_id("lf2") == old_id and life.ssh("lf2", "cat /root/marker").stdout.strip() == "kept"

    replace = kfab("lab", "up", "--replace", "lf2", "-i", str(INVENTORY))   # replacing is explicit
    assert replace.returncode == 0, replace.stderr
    assert container_id("lf2") != old_id
    assert life.ssh("lf2", "test -e /root/marker").returncode == 1
    assert_ready(life)


def test_pause_freezes_a_host_and_partition_cuts_its_link_both_ways_until_healed(life):
    life.up()
    lf1, lf2 = life.hosts["lf1"], life.hosts["lf2"]
    assert reaches(life, "lf1", lf2) and reaches(life, "lf2", lf1)

    assert kfab("lab", "pause", "lf2", "-i", str(INVENTORY)).returncode == 0
    assert json.loads(podman("inspect", "lf2").stdout)[0]["State"]["Status"] == "paused"
    assert not ssh_greets("lf1", lf2)                    # its sshd is frozen where it was
    assert "paused" in kfab("lab", "status", "-i", str(INVENTORY)).stdout
    assert kfab("lab", "unpause", "lf2", "-i", str(INVENTORY)).returncode == 0
    wait_until(lambda: ssh_greets("lf1", lf2), "lf2's sshd to answer again after unpause", 30)

    rules_before = podman("exec", "lf2", "sh", "-c", "ip route; ip addr").stdout
    cut = kfab("lab", "partition", "lf2", "-i", str(INVENTORY))
    assert cut.returncode == 0 and "cut off" in cut.stdout, cut.stderr
    assert not reaches(life, "lf1", lf2) and not reaches(life, "lf2", lf1)    # both ways
    status = kfab("lab", "status", "-i", str(INVENTORY))
    assert any(line.split()[:5] == ["lf2", "container", "yes", lf2, "partitioned"]
               for line in status.stdout.splitlines()), status.stdout
    assert kfab("lab", "heal", "lf2", "-i", str(INVENTORY)).returncode == 0
    assert reaches(life, "lf1", lf2) and reaches(life, "lf2", lf1)
    assert podman("exec", "lf2", "sh", "-c", "ip route; ip addr").stdout == rules_before
    assert "was not cut off" in kfab("lab", "heal", "lf2", "-i", str(INVENTORY)).stdout

    # `up` brings a paused and a cut-off host back as they were.
    assert kfab("lab", "partition", "lf1", "-i", str(INVENTORY)).returncode == 0
    assert kfab("lab", "pause", "lf2", "-i", str(INVENTORY)).returncode == 0
    ids = {name: container_id(name) for name in life.hosts}
    up = kfab("lab", "up", "-i", str(INVENTORY))
    assert up.returncode == 0, up.stderr
    assert_ready(life)
    assert {name: container_id(name) for name in life.hosts} == ids


def test_fault_commands_name_the_host_and_the_inventory(life):
    missing = kfab("lab", "stop", "lf9", "-i", str(INVENTORY))
    assert missing.returncode == 1
    assert "no lab host named 'lf9'" in missing.stderr and str(INVENTORY) in missing.stderr
    absent = kfab("lab", "pause", "lf1", "-i", str(INVENTORY))   # the lab is down (fixture)
    assert absent.returncode == 1 and "host lf1 has no container of lab kfablife" in absent.stderr
    life.up()
    assert kfab("lab", "stop", "lf1", "-i", str(INVENTORY)).returncode == 0
    for action in ("pause", "partition"):
        proc = kfab("lab", action, "lf1", "-i", str(INVENTORY))
        assert proc.returncode == 1 and "host lf1 is exited" in proc.stderr, proc.stderr
