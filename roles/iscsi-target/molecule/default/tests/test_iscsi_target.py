"""Role iscsi-target on the scenario's hosts (testinfra over SSH): tgt runs as a unit and answers on the iSCSI
port; the static volume is a target with LUN 1 on its sparse backing file, session CHAP and the nodes' addresses
as its ACL; a worker logs in with the CHAP pair and reads the LUN's size, the wrong secret is refused, and a host
outside the ACL neither sees the target in discovery nor logs in (libiscsi's userspace initiator)."""

from pathlib import Path

import pytest
import yaml

INVENTORY = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
TARGET_HOST = next(iter(INVENTORY["children"]["iscsi_target"]["hosts"]))
TARGET = INVENTORY["children"]["iscsi_target"]["hosts"][TARGET_HOST]["ansible_host"]
WORKER = next(iter(INVENTORY["children"]["workers"]["hosts"]))
WORKER_ADDRESS = INVENTORY["children"]["workers"]["hosts"][WORKER]["ansible_host"]
OUTSIDER = next(iter(INVENTORY["hosts"]))
USER, PASSWORD = INVENTORY["vars"]["iscsi_target_chap_user"], INVENTORY["vars"]["iscsi_target_chap_password"]
IQN = "iqn.2024-01.io.kfab:static1"   # the role's iscsi_target_iqn_base : the inventory's volume
BACKING = "/srv/kfab-iscsi/static1.img"
SIZE = 16 * 1024 * 1024

testinfra_hosts = [f"ansible://{TARGET_HOST}"]


@pytest.fixture
def other(host, request):
    return lambda name: host.get_host(f"ansible://{name}", ansible_inventory=request.config.option.ansible_inventory)


def lun(password: str = PASSWORD) -> str:
    return f"iscsi://{USER}%{password}@{TARGET}/{IQN}/1"


def test_tgt_runs_and_listens(host):
    service = host.service("tgt")
    assert service.is_running and service.is_enabled
    listening = host.check_output("ss -Htln")
    assert any(line.split()[3].endswith(":3260") for line in listening.splitlines()), listening


def test_static_volume_is_a_target_with_chap_and_the_nodes_acl(host):
    backing = host.file(BACKING)
    assert backing.is_file and backing.mode == 0o600 and backing.size == SIZE
    assert int(host.check_output(f"stat -c %b {BACKING}")) * 512 < SIZE   # sparse: the role truncates it
    assert host.file("/srv/kfab-iscsi").mode == 0o700
    assert host.file("/etc/tgt/conf.d/kfab-static.conf").mode == 0o600   # it holds the CHAP secret
    shown = host.check_output("tgtadm --lld iscsi --mode target --op show")
    target = shown.split(f": {IQN}\n", 1)[1].split("\nTarget ", 1)[0]
    assert f"Backing store path: {BACKING}" in target and "LUN: 1" in target, shown
    account = target.split("Account information:", 1)[1].split("ACL information:", 1)[0].split()
    acl = target.split("ACL information:", 1)[1].split()
    assert account == [USER] and acl == [WORKER_ADDRESS], shown


def test_a_worker_logs_in_with_chap(other):
    worker = other(WORKER)
    assert IQN in worker.check_output(f"iscsi-ls iscsi://{USER}%{PASSWORD}@{TARGET}")
    assert worker.check_output(f"iscsi-readcapacity16 -s {lun()}").strip() == str(SIZE)
    wrong = worker.run(f"iscsi-readcapacity16 -s {lun('wrong-secret-12')}")
    assert wrong.rc != 0 and not wrong.stdout.strip().isdigit(), wrong.stdout


def test_a_host_outside_the_acl_is_refused(other):
    outsider = other(OUTSIDER)
    assert IQN not in outsider.run(f"iscsi-ls iscsi://{USER}%{PASSWORD}@{TARGET}").stdout
    login = outsider.run(f"iscsi-readcapacity16 -s {lun()}")
    assert login.rc != 0 and not login.stdout.strip().isdigit(), login.stdout
