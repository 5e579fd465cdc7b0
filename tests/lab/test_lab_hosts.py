"""The shared session lab behaves like a set of fresh, distinct Debian VMs reachable over SSH."""

from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.lab


def test_every_host_answers_ssh_as_root_with_the_lab_key_and_strict_host_keys(lab):
    for name, ip in lab.hosts.items():
        out = lab.ssh(name, "id -un; hostname; ip -4 -o addr show eth0").stdout.split("\n")
        assert out[0] == "root"
        assert out[1] == name
        assert f" {ip}/" in out[2]


def test_hosts_have_distinct_host_keys_machine_ids_and_macs(lab):
    facts = {name: lab.ssh(name, "cat /etc/ssh/ssh_host_ed25519_key.pub /etc/machine-id "
                                 "/sys/class/net/eth0/address").stdout.split()
             for name in lab.hosts}
    host_keys = {f[1] for f in facts.values()}
    machine_ids = {f[3] for f in facts.values()}
    macs = {f[4] for f in facts.values()}
    assert len(host_keys) == len(machine_ids) == len(macs) == len(lab.hosts)
    assert all(len(m) == 32 for m in machine_ids)


def test_known_hosts_holds_each_hosts_real_key(lab):
    known = lab.known_hosts.read_text()
    for name, ip in lab.hosts.items():
        key = lab.ssh(name, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
        assert f"{ip},{name} ssh-ed25519 {key}" in known


def test_a_host_with_a_different_key_is_refused(lab, tmp_path):
    # known_hosts is really checked: the first host's key listed for the second host's IP is refused.
    names = list(lab.hosts)
    first_key = [line.split(" ", 1)[1] for line in lab.known_hosts.read_text().splitlines()
                 if line.startswith(f"{lab.hosts[names[0]]},")]
    wrong = tmp_path / "known_hosts"
    wrong.write_text("".join(f"{lab.hosts[names[1]]} {k}\n" for k in first_key))
    proc = subprocess.run(
        ["ssh", "-i", str(lab.key_file), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={wrong}", "-o", "StrictHostKeyChecking=yes",
         "-o", "GlobalKnownHostsFile=/dev/null", f"root@{lab.hosts[names[1]]}", "true"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "HOST IDENTIFICATION HAS CHANGED" in proc.stderr or "verification failed" in proc.stderr


def test_hosts_reach_each_other_over_the_lab_network(lab):
    names = list(lab.hosts)
    for src in names:
        for dst in names:
            if src != dst:
                banner = lab.ssh(src, "python3 -c \"import socket; s=socket.create_connection("
                                      f"('{lab.hosts[dst]}', 22), 5); print(s.recv(64).decode())\"")
                assert banner.stdout.startswith("SSH-2.0-OpenSSH")


def test_hosts_install_packages_from_the_debian_mirror_through_the_outer_nat(lab):
    host = next(iter(lab.hosts))
    # Another session sharing this lab may hold apt's lists lock for a while: retry until a deadline.
    lab.ssh(host, "for i in $(seq 120); do apt-get update -qq && exit 0; sleep 1; done; exit 1")
    # Fetch a real .deb through the mirror without changing what the host has installed.
    where = f"/root/apt-check-{os.getpid()}"
    lab.ssh(host, f"mkdir -p {where} && cd {where} && apt-get download -q busybox-static")
    assert lab.ssh(host, f"ls {where}").stdout.startswith("busybox-static_")
    lab.ssh(host, f"rm -rf {where}")
