"""kfab etcd status's reading of etcdctl's JSON, and the scheduled backup script run for real on a SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess

from kfab.ops.backup import SQLITE_BACKUP, schedule_script, schedule_units
from kfab.ops.etcd import format_status, member_rows
from kfab.provision.modules.base import q

# What etcdctl 3.4 prints (-w json): member list's members, endpoint status per endpoint.
MEMBERS = [{"ID": 10276657743932975437, "name": "ha1", "peerURLs": ["https://10.87.0.11:2380"],
            "clientURLs": ["https://10.87.0.11:2379"]},
           {"ID": 2281015385128101418, "name": "ha2", "peerURLs": ["https://10.87.0.12:2380"],
            "clientURLs": ["https://10.87.0.12:2379"]},
           {"ID": 7339, "peerURLs": ["https://10.87.0.13:2380"]}]     # added, not started: no name, no client URL
STATUS = {"Endpoint": "https://10.87.0.11:2379",
          "Status": {"header": {"cluster_id": 1, "member_id": 10276657743932975437, "revision": 4242,
                                "raft_term": 3},
                     "version": "3.4.23", "dbSize": 2412544, "leader": 10276657743932975437, "raftIndex": 5000,
                     "raftTerm": 3}}


def test_members_are_read_from_etcdctls_json_with_leader_size_and_health():
    rows = member_rows(MEMBERS, {"https://10.87.0.11:2379": STATUS, "https://10.87.0.12:2379": None},
                       {"https://10.87.0.11:2379": "healthy",
                        "https://10.87.0.12:2379": "unhealthy: context deadline exceeded",
                        "": "unhealthy: added, not started yet"})
    ha1, ha2, new = rows
    assert (ha1.name, ha1.member_id, ha1.leader, ha1.db_size, ha1.revision, ha1.healthy) == (
        "ha1", "8e9e05c52164694d", True, 2412544, 4242, True)
    assert (ha2.leader, ha2.db_size, ha2.healthy) == (False, None, False)
    assert (new.name, new.endpoint, new.health) == ("(not started)", "", "unhealthy: added, not started yet")
    table = format_status(rows).splitlines()
    assert table[0].split() == ["MEMBER", "ENDPOINT", "ID", "LEADER", "DB", "SIZE", "RAFT", "TERM", "REVISION",
                                "HEALTH"]
    assert table[1].split() == ["ha1", "https://10.87.0.11:2379", "8e9e05c52164694d", "yes", "2.3", "MiB", "3",
                                "4242", "healthy"]
    assert table[2].endswith("unhealthy: context deadline exceeded")


def test_the_scheduled_backup_keeps_the_newest_n_consistent_snapshots(tmp_path):
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table kine (name text)")
        conn.execute("insert into kine values ('/registry/configmaps/default/a')")
    take = f"python3 -c {q(SQLITE_BACKUP)} {q(str(db))} \"$part\""
    script = tmp_path / "kfab-backup"
    script.write_text(schedule_script(take, "db", keep=2, directory=str(tmp_path / "backups")))
    made = [subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert kept == sorted(m.rsplit("/", 1)[1] for m in made[1:])           # the oldest went, no .part left
    with sqlite3.connect(made[-1]) as conn:
        assert conn.execute("select name from kine").fetchall() == [("/registry/configmaps/default/a",)]


def test_a_failed_snapshot_leaves_nothing_behind(tmp_path):
    script = tmp_path / "kfab-backup"
    script.write_text(schedule_script("echo partial > \"$part\"; false", "db", keep=2,
                                      directory=str(tmp_path / "backups")))
    assert subprocess.run(["sh", str(script)], capture_output=True).returncode != 0
    assert list((tmp_path / "backups").iterdir()) == []


def test_the_timer_catches_up_a_missed_time_and_runs_the_script():
    units = schedule_units("hourly")
    timer = units["/etc/systemd/system/kfab-backup.timer"]
    assert "OnCalendar=hourly" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer
    assert "ExecStart=/usr/local/sbin/kfab-backup" in units["/etc/systemd/system/kfab-backup.service"]
