"""etcd operations on the HA lab (tests/lab/inventory/ha.yml), collected by tests/lab/test_up_ha.py after its own
tests, on its cluster: each command of docs/runbooks/etcd.md as a user runs it. `kfab etcd status` (and what it
says with a member down); `kfab backup --schedule` keeping N snapshots, and a restore from one of them;
`kfab replace-etcd-member` bringing a host back from a blank disk into the running etcd cluster."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kfab.lab import Lab
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "ha.yml"
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabha/admin.kubeconfig").expanduser()


def kfab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kfab", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=REPO)


def kubectl(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    return subprocess.run([binary, "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True,
                          timeout=60)


def on(lab: Lab, host: str, cmd: str) -> str:
    proc = lab.ssh(host, cmd, timeout=120)
    assert proc.returncode == 0, f"{host}: {cmd}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def status_rows(proc: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """`kfab etcd status` rows by member: [endpoint, id, leader, db size, unit, raft term, revision, health...]."""
    return {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:] if line.strip()}


def test_etcd_status_shows_every_member_one_leader_and_a_member_down(ha_lab):
    proc = kfab("etcd", "status", "-i", str(INVENTORY))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = status_rows(proc)
    assert set(rows) == {"ha1", "ha2", "ha3"}, proc.stdout
    assert [name for name, row in rows.items() if row[2] == "yes"].__len__() == 1, proc.stdout
    assert all(row[-1] == "healthy" and row[4] in ("KiB", "MiB") for row in rows.values()), proc.stdout

    on(ha_lab, "ha3", "systemctl stop etcd")
    try:
        down = kfab("etcd", "status", "-i", str(INVENTORY))
        assert down.returncode == 3, down.stdout + down.stderr
        rows = status_rows(down)
        assert "unhealthy" in " ".join(rows["ha3"]) and rows["ha3"][3] == "-", down.stdout
        assert rows["ha1"][-1] == rows["ha2"][-1] == "healthy", down.stdout
    finally:
        on(ha_lab, "ha3", "systemctl start etcd")
    wait_until("all members healthy again", lambda: kfab("etcd", "status", "-i", str(INVENTORY)).returncode == 0,
               60, 1)


def test_scheduled_backups_keep_n_snapshots_and_one_restores_the_cluster(ha_lab):
    proc = kfab("backup", "-i", str(INVENTORY), "--schedule", "hourly", "--keep", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ha1: a snapshot hourly into /var/backups/kfab, the newest 2 kept" in proc.stdout
    assert on(ha_lab, "ha1", "systemctl is-enabled kfab-backup.timer; systemctl is-active kfab-backup.timer"
              ).split() == ["enabled", "active"]
    bad = kfab("backup", "-i", str(INVENTORY), "--schedule", "every tuesday-ish")
    assert bad.returncode == 1 and "is not a systemd calendar expression" in bad.stderr, bad.stderr

    assert kubectl("create", "configmap", "sched-before", "--from-literal=k=v").returncode == 0
    for _ in range(3):   # what the timer runs, three times: the oldest snapshot goes
        on(ha_lab, "ha1", "systemctl start kfab-backup.service")
    snapshots = on(ha_lab, "ha1", "ls -1t /var/backups/kfab").split()
    assert len(snapshots) == 2 and all(s.endswith(".etcd-snapshot") for s in snapshots), snapshots

    # Restore from the newest scheduled snapshot, fetched the way the runbook says (scp).
    workdir = Path(tempfile.mkdtemp(prefix="kfab-etcd-ops-"))
    try:
        local = workdir / snapshots[0]
        ssh = ha_lab.ssh_command("ha1")
        scp = ["scp", *ssh[1:-1], f"root@{ha_lab.hosts['ha1']}:/var/backups/kfab/{snapshots[0]}", str(local)]
        assert subprocess.run(scp, capture_output=True, timeout=120).returncode == 0
        assert kubectl("delete", "configmap", "sched-before").returncode == 0
        assert kubectl("create", "configmap", "sched-after", "--from-literal=k=v").returncode == 0
        proc = kfab("restore", "-i", str(INVENTORY), str(local), "--yes")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wait_until("the API back after the restore", lambda: kubectl("get", "configmap", "sched-before").returncode == 0,
               120, 1)
    assert kubectl("get", "configmap", "sched-after").returncode != 0
    kubectl("delete", "configmap", "sched-before")

    off = kfab("backup", "-i", str(INVENTORY), "--schedule", "off")
    assert off.returncode == 0 and "scheduled backups removed" in off.stdout, off.stderr
    assert ha_lab.ssh("ha1", "systemctl cat kfab-backup.timer").returncode != 0


def test_replace_etcd_member_brings_a_blank_host_back_into_the_cluster(ha_lab, wheelhouse):
    refused = kfab("replace-etcd-member", "-i", str(INVENTORY), "ha3")
    assert refused.returncode == 1 and "etcd member ha3 is healthy" in refused.stderr, refused.stderr
    assert kubectl("create", "configmap", "before-replace", "--from-literal=k=v").returncode == 0

    # ha3 dies and comes back as a blank host with the same name and address.
    assert kfab("lab", "stop", "--kill", "ha3", "-i", str(INVENTORY)).returncode == 0
    assert kfab("lab", "up", "--replace", "ha3", "-i", str(INVENTORY)).returncode == 0
    assert ha_lab.ssh("ha3", "test -d /var/lib/etcd/kfab").returncode != 0

    proc = kfab("replace-etcd-member", "-i", str(INVENTORY), "ha3", "-e", f"kfab_wheelhouse={wheelhouse}",
                timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "etcd member ha3 is healthy; the cluster has 3 members" in proc.stdout, proc.stdout[-2000:]
    status = kfab("etcd", "status", "-i", str(INVENTORY))
    assert status.returncode == 0, status.stdout + status.stderr
    # ha3's own member has the data written before it died; its API server serves it.
    out = on(ha_lab, "ha3", "curl -sS --cacert /var/lib/kfab/pki/ca.crt --cert /var/lib/kfab/pki/admin.crt "
                            "--key /var/lib/kfab/pki/admin.key "
                            "https://127.0.0.1:6443/api/v1/namespaces/default/configmaps/before-replace")
    assert '"before-replace"' in out, out
    kubectl("delete", "configmap", "before-replace")
