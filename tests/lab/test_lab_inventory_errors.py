"""A lab inventory the lab cannot use gets one clear line naming the file and host; nothing starts."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

pytestmark = pytest.mark.lab

GOOD_VARS = """\
    kfab_lab_network: kfabbad
    kfab_lab_subnet: 10.81.0.0/24
"""


def inventory(tmp_path, vars_block: str, hosts_block: str):
    path = tmp_path / "lab.yml"
    path.write_text("all:\n  vars:\n" + vars_block + "  hosts:\n" + textwrap.indent(hosts_block, "    "))
    return path


def lab_up(path) -> subprocess.CompletedProcess:
    return subprocess.run(["kfab", "lab", "up", "-i", str(path)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def assert_nothing_started():
    for name in ("bad1", "bad2"):
        assert subprocess.run(["podman", "container", "exists", name]).returncode != 0
    assert subprocess.run(["podman", "network", "exists", "kfabbad"]).returncode != 0
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"], capture_output=True,
                           text=True, check=True).stdout
    assert "kfab-lab:kfabbad" not in rules


@pytest.mark.parametrize("vars_block, hosts_block, expected", [
    (GOOD_VARS, "bad1:\n  ansible_host: 10.81.0.11\nbad2:\n  ansible_user: root\n",
     "host bad2: ansible_host is missing"),
    (GOOD_VARS, "bad1:\n  ansible_host: 10.81.0.11\nbad2:\n  ansible_host: 10.99.0.12\n",
     "host bad2: ansible_host 10.99.0.12 is outside the lab subnet 10.81.0.0/24"),
    ("    kfab_lab_network: kfabbad\n", "bad1:\n  ansible_host: 10.81.0.11\n",
     "host bad1: kfab_lab_subnet is missing"),
    (GOOD_VARS, "bad1:\n  ansible_host: 10.81.0.11\nbad2:\n  ansible_host: 10.81.0.11\n",
     "host bad2: ansible_host 10.81.0.11 is already used by host bad1"),
    (GOOD_VARS, "bad1:\n  ansible_host: 10.81.0.1\n",
     "host bad1: ansible_host 10.81.0.1 is reserved"),
    (GOOD_VARS, "bad1:\n  ansible_host: not-an-ip\n",
     "host bad1: ansible_host 'not-an-ip' is not an IPv4 address"),
])
def test_bad_lab_inventory_is_refused_with_one_line_and_nothing_started(tmp_path, vars_block,
                                                                         hosts_block, expected):
    path = inventory(tmp_path, vars_block, hosts_block)
    proc = lab_up(path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert_nothing_started()


def test_broken_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("all:\n  vars:\n    kfab_lab_network: [unclosed\n")
    proc = lab_up(path)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(path) in proc.stderr
    assert_nothing_started()


def test_missing_inventory_file_is_named(tmp_path):
    proc = lab_up(tmp_path / "nope.yml")
    assert proc.returncode == 1
    assert str(tmp_path / "nope.yml") in proc.stderr and "not found" in proc.stderr
