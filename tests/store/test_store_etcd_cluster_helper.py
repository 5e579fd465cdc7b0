"""tests/etcd_cluster.py never leaves etcd processes behind, even when its user is killed."""

import os
import signal
import subprocess
import sys
import time

from tests.etcd_cluster import EtcdCluster

USER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.etcd_cluster import EtcdCluster
cluster = EtcdCluster().start()
print(" ".join(str(p.pid) for p in cluster.procs), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, the killed user, is gone and init reaps it soon).
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids, deadline_s=20.0) -> list[int]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_members_die_with_a_user_killed_by_sigkill():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    user = subprocess.Popen([sys.executable, "-c", USER, repo], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in user.stdout.readline().split()]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        user.send_signal(signal.SIGKILL)
        user.wait()
        assert wait_gone(pids) == []
    finally:
        user.kill()
        user.wait()
        user.stdout.close()


def test_stop_member_and_exit_stop_every_process():
    with EtcdCluster() as cluster:
        pids = [p.pid for p in cluster.procs]
        cluster.stop_member(1, kill=True)
        assert not alive(pids[1])
        cluster.start_member(1)
        pids.append(cluster.procs[1].pid)
        data_dir = cluster.dir
    assert wait_gone(pids) == [] and not data_dir.exists()
