"""VM hosts in the lab (tests/lab/inventory/vm.yml): a QEMU VM next to a container host on one subnet.

One lab for the module: the VM boots once (~25-50 s under emulation) and every test looks at it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kfab.lab import Lab
from kfab.lab import vm as labvm
from kfab.lab.image import host_recipe
from kfab.lab.inventory import load_lab_spec
from kfab.lab.state import state_dir
from kfab.lab.vm_image import vm_tag
from kfab.lab.vm_inventory import write_vms_inventory

from .conftest import LabHosts

INVENTORY = Path(__file__).parent / "inventory" / "vm.yml"
REPO = Path(__file__).resolve().parents[2]
VM, CONTAINER = "vmq1", "vmc1"


@pytest.fixture(scope="module")
def vmlab():
    lab = Lab(INVENTORY)
    lab.down()  # whatever a killed run left
    try:
        lab.up()
        yield LabHosts(lab)
    finally:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            lab.down()


def tcp_banner(lab: LabHosts, src: str, ip: str) -> str:
    """The first bytes that port 22 of `ip` sends to a connection from host `src` (bash's /dev/tcp)."""
    return lab.ssh(src, f"timeout 10 bash -c 'exec 3<>/dev/tcp/{ip}/22; head -c 7 <&3'").stdout


def test_vm_answers_ssh_with_its_own_host_key(vmlab):
    ip = vmlab.hosts[VM]
    known = [line.split()[1:3] for line in vmlab.known_hosts.read_text().splitlines()
             if line.split(",")[0] == ip]
    served = vmlab.ssh(VM, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
    assert served in known  # and ssh checked it strictly on the way in
    container = vmlab.ssh(CONTAINER, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
    assert container != served
    assert vmlab.ssh(VM, "hostname").stdout.strip() == VM


def test_vm_and_container_host_reach_each_other_on_the_lab_subnet(vmlab):
    assert tcp_banner(vmlab, VM, vmlab.hosts[CONTAINER]) == "SSH-2.0"
    assert tcp_banner(vmlab, CONTAINER, vmlab.hosts[VM]) == "SSH-2.0"
    # The container host sees the VM's own address (same bridge, no NAT in between).
    peers = vmlab.ssh(CONTAINER, f"timeout 10 bash -c 'exec 3<>/dev/tcp/{vmlab.hosts[VM]}/22; "
                                 "ss -Htn state established dst " + vmlab.hosts[VM] + "'").stdout
    assert vmlab.hosts[VM] in peers


def test_vm_reaches_the_debian_mirror_by_name(vmlab):
    mirror = vmlab.ssh(VM, "sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources | head -1").stdout.strip()
    proc = vmlab.ssh(VM, f"curl -sS -o /dev/null -w '%{{http_code}}' {mirror}/dists/bookworm/Release", check=False)
    assert proc.stdout.strip() == "200", proc.stderr


def test_vm_runs_its_own_kernel_and_loads_modules(vmlab):
    assert vmlab.ssh(VM, "uname -r").stdout.strip() != os.uname().release
    # The outer machine's kernel has neither modules nor NFS (shared LAB.md); the VM's loads both.
    vmlab.ssh(VM, "modprobe nfs && grep -qw nfs /proc/filesystems")
    vmlab.ssh(VM, "mkdir -p /mnt/t && mount -t tmpfs t /mnt/t && touch /mnt/t/x && umount /mnt/t")


def test_kfab_up_provisions_the_vm_and_podman_runs_a_container_in_it(vmlab):
    proc = subprocess.run(["kfab", "up", "-i", str(INVENTORY), "tests/lab/playbooks/vm-common.yml",
                           "--limit", VM], cwd=REPO, capture_output=True, text=True, timeout=1200,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # No registry here: a root filesystem of the VM's own dash and libc is the container.
    vmlab.ssh(VM, "set -e; r=/root/tiny; mkdir -p $r/bin $r/lib/x86_64-linux-gnu $r/lib64; "
                  "cp /bin/dash $r/bin/sh; cp /lib/x86_64-linux-gnu/libc.so.6 $r/lib/x86_64-linux-gnu/; "
                  "cp /lib64/ld-linux-x86-64.so.2 $r/lib64/")
    out = vmlab.ssh(VM, "podman run --rm --network none --rootfs /root/tiny /bin/sh -c 'echo in-container $$'",
                    timeout=300).stdout
    assert out.split() == ["in-container", "1"]


def test_second_up_is_a_no_op_and_status_shows_the_vm(vmlab):
    assert not vmlab.lab.up().changed
    rows = {r.name: r for r in vmlab.lab.status()}
    assert rows[VM].kind == "vm" and rows[VM].ready
    assert rows[CONTAINER].kind == "container" and rows[CONTAINER].ready


# One run (the module's VM reboots once): the boot id, a reboot in check mode, the boot id again, a reboot,
# and what the two returned written by a task that runs over the connection made after the reboot.
REBOOT_PLAY = """\
- hosts: {host}
  gather_facts: false
  tasks:
    - {{name: boot id, command: cat /proc/sys/kernel/random/boot_id, register: before, changed_when: false}}
    - name: restart, in check mode
      ansible.builtin.reboot: {args}
      check_mode: true
      register: dry
    - {{name: boot id, command: cat /proc/sys/kernel/random/boot_id, register: after_dry, changed_when: false}}
    - name: restart
      ansible.builtin.reboot: {args}
      register: restarted
    - name: what the reboots returned
      copy:
        content: "{{{{ before.stdout }}}} {{{{ after_dry.stdout }}}} {{{{ dry.rebooted }}}} {{{{ dry.elapsed }}}}
          {{{{ restarted.rebooted }}}} {{{{ restarted.elapsed }}}}\\n"
        dest: /root/rebooted
"""


def kfab_reboot(tmp_path: Path, host: str, args: str) -> subprocess.CompletedProcess:
    play = tmp_path / "reboot.yml"
    play.write_text(REBOOT_PLAY.format(host=host, args=args))
    return subprocess.run(["kfab", "up", "--skip-doctor", "-i", str(INVENTORY), str(play), "--limit", host],
                          cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def test_reboot_restarts_the_vm_waits_for_it_and_the_next_task_runs_over_a_new_connection(vmlab, tmp_path):
    proc = kfab_reboot(tmp_path, VM, "{reboot_timeout: 600, msg: kfab lab test}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before, after_dry, dry_rebooted, dry_elapsed, rebooted, elapsed = \
        vmlab.ssh(VM, "cat /root/rebooted").stdout.split()
    now = vmlab.ssh(VM, "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f1 /proc/uptime").stdout.split()
    print(f"reboot of {VM} under TCG: elapsed {elapsed} s (Ansible's result), uptime after {float(now[1]):.0f} s")
    # Check mode: Ansible's result, and the same boot.
    assert (after_dry, dry_rebooted, dry_elapsed) == (before, "True", "0")
    assert now[0] != before and rebooted == "True" and 1 <= int(elapsed) <= 600
    assert float(now[1]) < int(elapsed) + 120     # the kernel started during this run, not before
    assert f"rebooted: back after {elapsed} s" in proc.stdout, proc.stdout
    vmlab.ssh(VM, "rm -f /root/rebooted")


def test_reboot_timeout_too_short_fails_in_ansibles_words(vmlab, tmp_path):
    """A host whose boot id never changes (the reboot command does nothing): the container host, so the
    module's VM reboots once only."""
    proc = kfab_reboot(tmp_path, CONTAINER, "{reboot_command: /bin/true, reboot_timeout: 3}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Timed out waiting for last boot time check (timeout=3)" in proc.stdout, proc.stdout
    assert vmlab.ssh(CONTAINER, "test -e /root/rebooted", check=False).returncode == 1


def test_up_restarts_a_vm_whose_qemu_was_killed(vmlab):
    spec = vmlab.lab.spec
    pid = int((labvm.vm_dir(spec, VM) / "qemu.pid").read_text())
    os.kill(pid, 9)
    result = vmlab.lab.up()
    assert result.started == [VM]
    assert vmlab.ssh(VM, "hostname").stdout.strip() == VM
    assert int((labvm.vm_dir(spec, VM) / "qemu.pid").read_text()) != pid


def running(pid: int) -> bool:
    """A process that has exited but not been reaped yet (a zombie: this machine's PID 1 reaps the daemonized
    QEMU lazily) does not run."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_down_stops_the_vm_and_removes_its_tap(vmlab):
    spec = vmlab.lab.spec
    pid = int((labvm.vm_dir(spec, VM) / "qemu.pid").read_text())
    tap = labvm.tap_name(spec, VM)
    assert Path(f"/sys/class/net/{tap}").exists()
    removed = vmlab.lab.down()
    assert f"vm {VM}" in removed
    assert not running(pid)
    assert not Path(f"/sys/class/net/{tap}").exists()
    assert not labvm.vm_dir(spec, VM).exists()


BAD_LAB = """\
all:
  vars:
    kfab_lab_network: kfabvmbad
    kfab_lab_subnet: 10.94.0.0/24
  hosts:
    badc1: {ansible_host: 10.94.0.11}
"""


def lab_up(path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "kfab"), "lab", "up", "-i", str(path)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)


def assert_refused(proc, *expected):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert subprocess.run(["podman", "network", "exists", "kfabvmbad"]).returncode != 0
    assert subprocess.run(["podman", "container", "exists", "badc1"]).returncode != 0
    assert not (state_dir("kfabvmbad") / "vms/badv1").exists()


@pytest.mark.parametrize("vm_block, expected", [
    ("badv1: {ansible_host: 10.95.0.21, kfab_lab_vm: true}", "host badv1: ansible_host 10.95.0.21 is outside"),
    ("badv1: {kfab_lab_vm: true}", "host badv1: ansible_host is missing"),
    ("badv1: {ansible_host: 10.94.0.254, kfab_lab_vm: true}", "host badv1: ansible_host 10.94.0.254 is reserved"),
    ("badv1: {ansible_host: 10.94.0.21, kfab_lab_vm: maybe}", "host badv1: kfab_lab_vm 'maybe' is not true"),
    ("badv1: {ansible_host: 10.94.0.21, kfab_lab_vm: true, kfab_lab_vm_memory: 64}",
     "host badv1: kfab_lab_vm_memory 64 is outside"),
])
def test_bad_vm_host_is_refused_naming_file_and_host(tmp_path, vm_block, expected):
    path = tmp_path / "lab.yml"
    path.write_text(BAD_LAB + textwrap.indent(vm_block, "    ") + "\n")
    assert_refused(lab_up(path), str(path), expected)


def test_vm_lab_without_qemu_is_refused_before_anything_starts(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(BAD_LAB + "    badv1: {ansible_host: 10.94.0.21, kfab_lab_vm: true}\n")
    assert_refused(lab_up(path, env={**os.environ, "PATH": str(tmp_path)}),
                   str(path), "host badv1 is a VM", "qemu-system-x86_64 is not installed")


def test_vm_image_without_a_kernel_is_refused_before_anything_starts(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(BAD_LAB + "    badv1: {ansible_host: 10.94.0.21, kfab_lab_vm: true}\n")
    image = tmp_path / "data/kfab/lab/vm-images" / vm_tag(host_recipe())
    image.mkdir(parents=True)
    (image / "disk.img").write_bytes(b"\0" * 512)
    (image / "initrd").write_bytes(b"\0" * 512)
    (image / "done").write_text("")
    assert_refused(lab_up(path, env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}),
                   f"VM image {image}: vmlinux is missing")


def test_vms_option_writes_an_inventory_with_vm_hosts_on_the_next_free_ips(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(BAD_LAB + "    badc2: {ansible_host: 10.94.0.12}\n")
    written = write_vms_inventory(load_lab_spec(path), 2)
    assert written == tmp_path / "lab-vms.yml"
    spec = load_lab_spec(written)
    vms = {h.name: h.ip for h in spec.hosts if h.vm}
    assert vms == {"vm1": "10.94.0.13", "vm2": "10.94.0.14"}
    assert {h.name for h in spec.hosts if not h.vm} == {"badc1", "badc2"}
    assert all("workers" in h.groups for h in spec.hosts if h.vm)
    # The same request again leaves the file as it is.
    mtime = written.stat().st_mtime_ns
    assert write_vms_inventory(load_lab_spec(path), 2) == written and written.stat().st_mtime_ns == mtime
