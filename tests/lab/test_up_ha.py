"""`kfab up` with 3 control-plane hosts: an etcd member on each forms one cluster (TLS between peers), an API
server on each uses all members, and the API keeps answering with one member stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kfab.lab import Lab

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "ha.yml"
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabha/admin.kubeconfig").expanduser()


@pytest.fixture(scope="module")
def wheelhouse() -> str:
    """One wheelhouse for both `kfab up` runs: others edit the shared tree meanwhile, which is not a change."""
    from kfab.install.wheelhouse import build

    return str(build())


@pytest.fixture(scope="module")
def ha_lab(wheelhouse):
    lab = Lab(INVENTORY)
    lab.down()
    lab.up()
    try:
        proc = subprocess.run([sys.executable, "-m", "kfab", "up", "-i", str(INVENTORY), "-e",
                               f"kfab_wheelhouse={wheelhouse}"], capture_output=True,
                              text=True, timeout=1800, stdin=subprocess.DEVNULL, cwd=REPO)
        assert proc.returncode == 0, f"kfab up failed:\n{proc.stdout}{proc.stderr}"
        yield lab
    finally:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            lab.down()


def ssh(lab: Lab, host: str, cmd: str) -> str:
    proc = lab.ssh(host, cmd, timeout=120)
    assert proc.returncode == 0, f"{host}: {cmd}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def kubectl(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    return subprocess.run([binary, "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True,
                          timeout=60)


def test_etcd_members_form_one_cluster_with_tls_peers(ha_lab):
    members = json.loads(ssh(ha_lab, "ha1", "curl -sS http://127.0.0.1:2379/v3/cluster/member/list -X POST -d '{}'"))
    peers = sorted(u for m in members["members"] for u in m["peerURLs"])
    assert peers == [f"https://10.87.0.1{i}:2380" for i in (1, 2, 3)]
    for host in ("ha1", "ha2", "ha3"):
        assert ssh(ha_lab, host, "stat -c '%a %U' /etc/kfab-etcd/member.key").strip() == "600 etcd"
        assert "etcd+https://10.87.0.11:2379,10.87.0.12:2379,10.87.0.13:2379?cacert=" in ssh(
            ha_lab, host, "systemctl show -p ExecStart kfab-apiserver")
    # Clients reach members over TLS only, with a certificate: plain HTTP and a certificate-less TLS client fail.
    assert ha_lab.ssh("ha1", "curl -sS --max-time 5 http://10.87.0.12:2379/health", timeout=60).returncode != 0
    assert ha_lab.ssh("ha1", "curl -sS --max-time 5 --cacert /var/lib/kfab/pki/ca.crt "
                             "https://10.87.0.12:2379/health", timeout=60).returncode != 0
    healthy = ssh(ha_lab, "ha1", "curl -sS --max-time 5 --cacert /var/lib/kfab/pki/ca.crt --cert "
                                 "/var/lib/kfab/pki/etcd-client.crt --key /var/lib/kfab/pki/etcd-client.key "
                                 "https://10.87.0.12:2379/health")
    assert json.loads(healthy)["health"] == "true"


def test_api_keeps_answering_with_one_etcd_member_stopped(ha_lab):
    assert kubectl("create", "namespace", "ha-before").returncode == 0
    ssh(ha_lab, "ha3", "systemctl stop etcd")
    try:
        proc = kubectl("create", "configmap", "-n", "ha-before", "written-while-down", "--from-literal=a=b")
        assert proc.returncode == 0, proc.stderr
        assert kubectl("get", "configmap", "-n", "ha-before", "written-while-down").returncode == 0
    finally:
        ssh(ha_lab, "ha3", "systemctl start etcd")
    # the stopped member catches up: its own store has the write made while it was down
    deadline = time.monotonic() + 60
    key = "/registry/configmaps/ha-before/written-while-down"
    while time.monotonic() < deadline:
        out = ssh(ha_lab, "ha3", "curl -sS http://127.0.0.1:2379/v3/kv/range -X POST -d "
                                  f"'{{\"key\": \"{__import__('base64').b64encode(key.encode()).decode()}\", "
                                  "\"serializable\": true, \"count_only\": true}'")
        if json.loads(out).get("count") == "1":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"ha3's etcd never caught up with {key}: {out}")


def test_second_up_changes_nothing(ha_lab, wheelhouse):
    proc = subprocess.run([sys.executable, "-m", "kfab", "up", "-i", str(INVENTORY), "-e",
                           f"kfab_wheelhouse={wheelhouse}"], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [r.split() for r in proc.stdout.split("\nRECAP\n", 1)[1].splitlines()[1:] if r.strip()]
    assert {r[0]: int(r[2]) for r in rows} == {"ha1": 0, "ha2": 0, "ha3": 0}, proc.stdout
