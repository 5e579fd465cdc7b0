"""The lab's fault commands without a lab: what they read from Podman, the MAC a host keeps, the nft rules
that cut a host's link (checked by this machine's nft), and the errors that name host and inventory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kfab.lab import faults, hosts
from kfab.lab.errors import LabError
from kfab.lab.inventory import load_lab_spec

INVENTORY = """all:
  vars: {kfab_lab_network: kfabunit, kfab_lab_subnet: 10.99.0.0/24}
  hosts:
    u1: {ansible_host: 10.99.0.11}
    v1: {ansible_host: 10.99.0.21, kfab_lab_vm: true}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return load_lab_spec(path)


def test_a_host_keeps_one_mac_address_per_lab_address():
    assert hosts.mac_address("10.92.0.12") == "02:6b:0a:5c:00:0c"
    assert hosts.mac_address("10.92.0.12") != hosts.mac_address("10.92.0.13")
    first_octet = int(hosts.mac_address("10.1.2.3").split(":")[0], 16)
    assert first_octet & 0b10 and not first_octet & 0b1       # locally administered, unicast


def test_a_stopped_host_is_known_by_the_address_it_was_created_with(spec):
    command = ["podman", "run", "-d", "--name", "u1", "--network", "kfabunit", "--ip", "10.99.0.11", "img"]
    assert hosts._created_ip(command) == "10.99.0.11"
    assert hosts._created_ip(["podman", "create", "--name", "u1", "img"]) is None
    host = spec.host("u1")
    stopped = hosts.Container("u1", False, "img", "10.99.0.11", "kfabunit", status="exited")
    assert stopped.stopped and not stopped.paused
    assert hosts.is_current(stopped, spec, host, "img")          # kept: `up` starts it with its disk
    assert not hosts.is_current(stopped, spec, host, "newer-img")
    other_ip = hosts.Container("u1", False, "img", None, "kfabunit", status="created")
    assert not hosts.is_current(other_ip, spec, host, "img")
    # Left by a killed `kfab lab up` whose own `podman run` may still be starting it: made afresh.
    for status in ("created", "configured", "initialized"):
        half_made = hosts.Container("u1", False, "img", "10.99.0.11", "kfabunit", status=status)
        assert not hosts.is_current(half_made, spec, host, "img")


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_the_partition_rules_are_valid_nftables():
    proc = subprocess.run(["nft", "-c", "-f", "-"], input=faults.PARTITION_RULES, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert 'iifname "eth0" drop' in faults.PARTITION_RULES and 'oifname "eth0" drop' in faults.PARTITION_RULES


def test_faults_refuse_a_vm_and_an_unknown_host_naming_the_inventory(spec):
    with pytest.raises(LabError, match=r"inv.yml: host v1 is a QEMU VM"):
        faults.stop(spec, "v1")
    with pytest.raises(LabError, match=r"inv.yml: no lab host named 'u9' \(hosts: u1, v1\)"):
        faults.pause(spec, "u9")


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_a_host_with_no_container_says_to_run_lab_up(spec):
    with pytest.raises(LabError, match=r"host u1 has no container of lab kfabunit \(run `kfab lab up -i .*inv.yml`"):
        faults.partition(spec, "u1")
