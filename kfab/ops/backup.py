"""`kfab backup` / `kfab restore`: the state store to a file on this machine and back.

SQLite (one control-plane host): an online backup with SQLite's backup API (consistent while the API server
writes), copied here over SFTP. etcd: `etcdctl snapshot save` on the first etcd member (etcd-client is
installed there if missing); restore rebuilds every member's data directory from the snapshot with
`etcdctl snapshot restore` (as etcd's disaster-recovery guide does), the old one kept beside it.

Restore stops the API servers, controller-manager and scheduler, puts the state back, starts them, then
restarts every worker's agents so that nothing keeps watching from a revision the restored store never had
(the Kubernetes guide's advice after an etcd restore). The old state file or directory is kept as
`<path>.before-restore-<time>`.

`kfab backup --schedule CALENDAR [--keep N]` installs a systemd timer (kfab-backup.timer) on the host the
backup is taken from that keeps the newest N snapshots in /var/backups/kfab; `--schedule off` removes it.
"""

from __future__ import annotations

import datetime
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kfab.ops.cluster import Cluster, OpsError
from kfab.ops.reset import confirm
from kfab.provision.modules.base import q

CONTROL_UNITS = ("kfab-scheduler", "kfab-controller-manager", "kfab-apiserver")   # stop order
WORKER_UNITS = ("kfab-node", "kfab-proxy", "kfab-dns")
SQLITE_BACKUP = ("import sqlite3, sys\n"
                 "src = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n"
                 "dst = sqlite3.connect(sys.argv[2])\n"
                 "src.backup(dst)\n"
                 "dst.close()\n")


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def store(cluster: Cluster) -> tuple[str, str]:
    """('sqlite', path of state.db) or ('etcd', '')."""
    host = cluster.control_plane[0]
    backend = str(cluster.var(host, "state_store_backend"))
    if backend == "sqlite":
        return backend, f"{cluster.var(host, 'state_store_sqlite_dir')}/state.db"
    if backend == "etcd":
        if not cluster.group("etcd"):
            raise OpsError(f"{cluster.inventory_path}: state_store_backend is etcd but group 'etcd' has no hosts")
        return backend, ""
    raise OpsError(f"{cluster.inventory_path}: state_store_backend {backend!r} is neither sqlite nor etcd")


def default_output(cluster: Cluster, backend: str) -> Path:
    suffix = "db" if backend == "sqlite" else "etcd-snapshot"
    return cluster.pki_dir.parent / "backups" / f"state-{_stamp()}.{suffix}"


# ---- backup ---------------------------------------------------------------------------------------------

def backup(cluster: Cluster, output: Path) -> Path:
    backend, path = store(cluster)
    if output.exists():
        raise OpsError(f"{output} exists already: not overwritten")
    if not output.parent.is_dir() and output.parent != default_output(cluster, backend).parent:
        raise OpsError(f"{output.parent}: no such directory")
    output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    host = cluster.control_plane[0] if backend == "sqlite" else cluster.group("etcd")[0]
    tmp = f"/root/.kfab-backup-{_stamp()}"
    with cluster.ssh(host) as remote:
        try:
            if backend == "sqlite":
                if remote.file(path) is None:
                    raise OpsError(f"host {host}: {path} does not exist (is the cluster installed?)")
                # umask 077: the copy holds every object the store does (Secrets encrypted, the rest not)
                cluster.run(remote, f"umask 077 && python3 -c {q(SQLITE_BACKUP)} {q(path)} {q(tmp)}",
                            f"backing up {path}")
            else:
                url, tls = etcd_local(cluster, host)
                ensure_etcdctl(cluster, remote)
                cluster.run(remote, f"umask 077 && ETCDCTL_API=3 etcdctl --endpoints={url} {tls} snapshot save "
                                    f"{q(tmp)} >/dev/null", "etcdctl snapshot save")
            remote.conn.sftp().get(tmp, str(output))
        finally:
            remote.run(f"rm -f {q(tmp)}")
    output.chmod(0o600)
    return output


def etcd_local(cluster: Cluster, host: str) -> tuple[str, str]:
    """(URL of the member on the host's loopback, curl/etcdctl TLS options): plain HTTP where the role keeps it
    for tools on the host (etcd_loopback_plain_http), else TLS with the member's own certificate."""
    port = cluster.var(host, "etcd_client_port", 2379)
    if cluster.var(host, "etcd_loopback_plain_http", True) in (True, "true", "True", "yes"):
        return f"http://127.0.0.1:{port}", ""
    pki = cluster.var(host, "etcd_pki_dir", "/etc/kfab-etcd")
    return f"https://127.0.0.1:{port}", f"--cacert {pki}/ca.crt --cert {pki}/member.crt --key {pki}/member.key"


def ensure_etcdctl(cluster: Cluster, remote) -> None:
    if remote.run("command -v etcdctl").rc != 0:
        cluster.run(remote, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-client >/dev/null",
                    "installing etcd-client (etcdctl)")


# ---- scheduled backups ------------------------------------------------------------------------------------

SCHEDULE_DIR = "/var/backups/kfab"
SCHEDULE_UNIT = "kfab-backup"
SCHEDULE_SCRIPT = "/usr/local/sbin/kfab-backup"


def schedule_host(cluster: Cluster) -> str:
    """Where scheduled snapshots are taken and kept: the first etcd member, or the SQLite control-plane host."""
    backend, _ = store(cluster)
    return cluster.control_plane[0] if backend == "sqlite" else cluster.group("etcd")[0]


def snapshot_command(cluster: Cluster, host: str) -> tuple[str, str]:
    """(shell command writing a snapshot to "$part", file suffix) for the store on `host`."""
    backend, path = store(cluster)
    if backend == "sqlite":
        return f"python3 -c {q(SQLITE_BACKUP)} {q(path)} \"$part\"", "db"
    url, tls = etcd_local(cluster, host)
    return f"ETCDCTL_API=3 etcdctl --endpoints={url} {tls} snapshot save \"$part\" >/dev/null", "etcd-snapshot"


def schedule_script(take: str, suffix: str, keep: int, directory: str = SCHEDULE_DIR) -> str:
    """One snapshot into `directory` (written under a temporary name, then renamed), the newest `keep` kept."""
    return f"""#!/bin/sh
# Managed by kfab (kfab backup --schedule): a snapshot of the state store; the newest {keep} are kept.
set -eu
umask 077
mkdir -p {directory}
final={directory}/state-$(date -u +%Y%m%dT%H%M%S.%NZ).{suffix}
part="$final.part"
trap 'rm -f "$part"' EXIT
{take}
mv "$part" "$final"
ls -1t {directory}/state-*.{suffix} | tail -n +{keep + 1} | xargs -r rm -f --
echo "$final"
"""


def schedule_units(calendar: str) -> dict[str, str]:
    return {
        f"/etc/systemd/system/{SCHEDULE_UNIT}.service": f"""# Managed by kfab (kfab backup --schedule).
[Unit]
Description=kfab: a snapshot of the cluster's state store into {SCHEDULE_DIR}

[Service]
Type=oneshot
ExecStart={SCHEDULE_SCRIPT}
""",
        f"/etc/systemd/system/{SCHEDULE_UNIT}.timer": f"""# Managed by kfab (kfab backup --schedule).
[Unit]
Description=kfab: scheduled snapshots of the state store ({calendar})

[Timer]
OnCalendar={calendar}
# A time missed while the host was off is caught up at boot.
Persistent=true

[Install]
WantedBy=timers.target
""",
    }


def schedule(cluster: Cluster, calendar: str, keep: int) -> str:
    """Install (or replace) the backup timer; `calendar` 'off' removes it. Returns the host it runs on."""
    host = schedule_host(cluster)
    with cluster.ssh(host) as remote:
        if calendar == "off":
            units = " ".join(f"/etc/systemd/system/{SCHEDULE_UNIT}.{kind}" for kind in ("service", "timer"))
            cluster.run(remote, f"systemctl disable --now {SCHEDULE_UNIT}.timer 2>/dev/null; "
                                f"rm -f {units} {SCHEDULE_SCRIPT}; systemctl daemon-reload",
                        "removing the backup timer")
            return host
        if keep < 1:
            raise OpsError(f"--keep {keep}: keep at least one snapshot")
        check = remote.run(f"systemd-analyze calendar {q(calendar)}")
        if check.rc != 0:
            raise OpsError(f"host {host}: --schedule {calendar!r} is not a systemd calendar expression "
                           "(e.g. hourly, daily, '*-*-* 00/6:00:00')")
        if store(cluster)[0] == "etcd":
            ensure_etcdctl(cluster, remote)
        files = {SCHEDULE_SCRIPT: schedule_script(*snapshot_command(cluster, host), keep), **schedule_units(calendar)}
        for path, text in files.items():
            cluster.run(remote, f"printf '%s' {q(text)} > {q(path)}", f"writing {path}")
        cluster.run(remote, f"chmod 755 {SCHEDULE_SCRIPT} && systemctl daemon-reload && "
                            f"systemctl enable {SCHEDULE_UNIT}.timer >/dev/null 2>&1 && "
                            f"systemctl restart {SCHEDULE_UNIT}.timer", "enabling the backup timer")
    return host


def run_backup(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook)
        backend, _ = store(cluster)
        if args.schedule:
            host = schedule(cluster, args.schedule, args.keep)
            print(f"{host}: scheduled backups removed" if args.schedule == "off" else
                  f"{host}: a snapshot {args.schedule} into {SCHEDULE_DIR}, the newest {args.keep} kept "
                  f"(systemctl list-timers {SCHEDULE_UNIT}; one now: systemctl start {SCHEDULE_UNIT})")
            return 0
        out = backup(cluster, args.output or default_output(cluster, backend))
    except OpsError as exc:
        print(f"kfab backup: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


# ---- restore --------------------------------------------------------------------------------------------

def _systemctl(cluster: Cluster, remote, verb: str, units) -> None:
    for unit in units:
        if remote.unit(f"{unit}.service").exists:
            cluster.run(remote, f"systemctl {verb} {unit}.service", f"systemctl {verb} {unit}")


def wait_api(cluster: Cluster, remote, host: str) -> None:
    data = cluster.var(host, "kfab_data_dir", "/var/lib/kfab")
    port = cluster.var(host, "kfab_apiserver_port", 6443)
    cluster.run(remote, f"curl -sS --fail --retry 90 --retry-delay 1 --retry-all-errors --cacert {data}/pki/ca.crt "
                        f"--cert {data}/pki/admin.crt --key {data}/pki/admin.key "
                        f"https://127.0.0.1:{port}/readyz >/dev/null", "waiting for the API server (/readyz)")


def _restore_sqlite(cluster: Cluster, remotes: dict, backup_file: Path, path: str, stamp: str) -> None:
    host = cluster.control_plane[0]
    remote = remotes[host]
    upload = f"{path}.restore-{stamp}"
    remote.conn.sftp().put(str(backup_file), upload)
    cluster.run(remote, f"chmod 600 {q(upload)} && for f in {q(path)} {q(path + '-wal')} {q(path + '-shm')}; do "
                        f"[ -e \"$f\" ] && mv \"$f\" \"$f.before-restore-{stamp}\"; done; mv {q(upload)} {q(path)}",
                "putting the backup in place")


def _restore_etcd(cluster: Cluster, remotes: dict, backup_file: Path, stamp: str) -> None:
    members = cluster.group("etcd")
    first = members[0]
    peer_port = cluster.var(first, "etcd_peer_port", 2380)
    initial = ",".join(f"{h}=https://{cluster.address(h)}:{peer_port}" for h in members)
    token = cluster.var(first, "etcd_cluster_token", f"kfab-{cluster.name}")
    for host in members:
        _systemctl(cluster, remotes[host], "stop", ["etcd"])
    for host in members:
        remote, data_dir = remotes[host], str(cluster.var(host, "etcd_data_dir"))
        ensure_etcdctl(cluster, remote)
        snapshot, fresh = f"/root/.kfab-restore-{stamp}.db", f"{data_dir}.restore-{stamp}"
        remote.conn.sftp().put(str(backup_file), snapshot)
        cluster.run(remote, f"ETCDCTL_API=3 etcdctl snapshot restore {q(snapshot)} --name {q(host)} "
                            f"--initial-cluster {q(initial)} --initial-cluster-token {q(token)} "
                            f"--initial-advertise-peer-urls https://{cluster.address(host)}:{peer_port} "
                            f"--data-dir {q(fresh)} >/dev/null && rm -f {q(snapshot)} && "
                            f"mv {q(data_dir)} {q(data_dir + '.before-restore-' + stamp)} && "
                            f"mv {q(fresh)} {q(data_dir)} && chown -R etcd:etcd {q(data_dir)}",
                    "etcdctl snapshot restore")
    # All members at once: each waits for the others to form a quorum.
    with ThreadPoolExecutor(max_workers=len(members)) as pool:
        list(pool.map(lambda h: _systemctl(cluster, remotes[h], "start", ["etcd"]), members))


def restore(cluster: Cluster, backup_file: Path) -> None:
    backend, path = store(cluster)
    if not backup_file.is_file():
        raise OpsError(f"{backup_file}: no such backup file")
    head = backup_file.read_bytes()[:16]
    if backend == "sqlite" and head != b"SQLite format 3\x00":
        raise OpsError(f"{backup_file} is not a SQLite database, and {cluster.inventory_path}'s store is SQLite")
    if backend == "etcd" and head == b"SQLite format 3\x00":
        raise OpsError(f"{backup_file} is a SQLite database, and {cluster.inventory_path}'s store is etcd")
    control = cluster.control_plane
    hosts = list(dict.fromkeys(control + cluster.group("etcd") + cluster.group("workers")))
    remotes = {}
    stamp = _stamp()
    try:
        for host in hosts:
            remotes[host] = cluster.connect(host)
        for host in control:
            _systemctl(cluster, remotes[host], "stop", CONTROL_UNITS)
        if backend == "sqlite":
            _restore_sqlite(cluster, remotes, backup_file, path, stamp)
        else:
            _restore_etcd(cluster, remotes, backup_file, stamp)
        for host in control:
            _systemctl(cluster, remotes[host], "start", ["kfab-apiserver"])
            wait_api(cluster, remotes[host], host)
            _systemctl(cluster, remotes[host], "start", CONTROL_UNITS[:2])
        for host in cluster.group("workers"):
            _systemctl(cluster, remotes[host], "try-restart", WORKER_UNITS)
    finally:
        for remote in remotes.values():
            remote.close()


def run_restore(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook)
        store(cluster)
        if not args.file.is_file():
            raise OpsError(f"{args.file}: no such backup file")
        if not args.yes and not confirm(f"Replace the state of cluster {cluster.name} with {args.file}? The API "
                                        f"is down meanwhile; objects created since the backup are lost."):
            print("kfab restore: nothing changed", file=sys.stderr)
            return 1
        restore(cluster, args.file)
    except OpsError as exc:
        print(f"kfab restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into cluster {cluster.name}")
    return 0
