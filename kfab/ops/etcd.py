"""etcd operations on a cluster `kfab up` installed with the etcd store: `kfab etcd status` (members, leader,
health, DB size) and `kfab replace-etcd-member HOST` (etcd's runbook for a failed member as one command).

Both run etcdctl on an etcd member over SSH, against every member's client URL with that member's certificate
(the members require client certificates from the cluster CA): nothing on this machine needs etcdctl.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from kfab.ops.backup import ensure_etcdctl
from kfab.ops.cluster import Cluster, OpsError, command
from kfab.provision.modules.base import q

COMMAND_TIMEOUT = "5s"


@dataclass(frozen=True)
class MemberStatus:
    name: str
    endpoint: str
    member_id: str        # hex, as etcdctl prints it
    leader: bool
    health: str           # "healthy" or "unhealthy: <why>"
    db_size: int | None   # bytes; None when the member did not answer
    raft_term: int | None
    revision: int | None

    @property
    def healthy(self) -> bool:
        return self.health == "healthy"


def etcd_hosts(cluster: Cluster) -> list[str]:
    backend = str(cluster.var(cluster.control_plane[0], "state_store_backend"))
    members = cluster.group("etcd")
    if backend != "etcd" or not members:
        raise OpsError(f"{cluster.inventory_path}: the cluster's state store is {backend}, not etcd "
                       "(kfab etcd works on clusters whose group 'etcd' holds the members)")
    return members


def client_url(cluster: Cluster, host: str) -> str:
    return f"https://{cluster.address(host)}:{cluster.var(host, 'etcd_client_port', 2379)}"


def peer_url(cluster: Cluster, host: str) -> str:
    return f"https://{cluster.address(host)}:{cluster.var(host, 'etcd_peer_port', 2380)}"


def etcdctl(cluster: Cluster, host: str, endpoints: list[str]) -> str:
    """The etcdctl command line on `host`: its member certificate, the given endpoints, a short timeout."""
    pki = cluster.var(host, "etcd_pki_dir", "/etc/kfab-etcd")
    return (f"ETCDCTL_API=3 etcdctl --endpoints={','.join(endpoints)} --command-timeout={COMMAND_TIMEOUT} "
            f"--cacert {pki}/ca.crt --cert {pki}/member.crt --key {pki}/member.key")


def connect_any(cluster: Cluster, hosts: list[str]):
    """(host, remote) of the first etcd host that answers SSH; OpsError naming them all when none does."""
    errors = []
    for host in hosts:
        try:
            return host, cluster.connect(host)
        except OpsError as exc:
            errors.append(f"{host}: {exc}")
    raise OpsError("no etcd host answers SSH (" + "; ".join(errors) + ")")


def member_rows(members: list[dict], statuses: dict[str, dict | None], health: dict[str, str]) -> list[MemberStatus]:
    """Rows from `member list -w json`'s members, each endpoint's `endpoint status -w json` entry (None: no
    answer) and health ("healthy" or why not)."""
    rows = []
    for member in members:
        endpoint = (member.get("clientURLs") or [""])[0]
        status = statuses.get(endpoint)
        inner = (status or {}).get("Status") or {}
        header = inner.get("header") or {}
        member_id = int(member.get("ID") or 0)
        rows.append(MemberStatus(
            name=member.get("name") or "(not started)", endpoint=endpoint, member_id=f"{member_id:x}",
            leader=bool(inner) and int(inner.get("leader") or 0) == member_id,
            health=health.get(endpoint, "unhealthy: not asked"),
            db_size=inner.get("dbSize") if inner else None,
            raft_term=inner.get("raftTerm") if inner else None,
            revision=header.get("revision") if inner else None))
    return rows


def status(cluster: Cluster) -> list[MemberStatus]:
    hosts = etcd_hosts(cluster)
    host, remote = connect_any(cluster, hosts)
    try:
        ensure_etcdctl(cluster, remote)
        urls = [client_url(cluster, h) for h in hosts]
        listed = remote.run(etcdctl(cluster, host, urls) + " member list -w json")
        if listed.rc != 0:
            raise OpsError(f"host {host}: etcdctl member list failed: "
                           f"{(listed.stderr.strip().splitlines() or ['no quorum?'])[-1]}")
        members = json.loads(listed.stdout).get("members") or []
        statuses: dict[str, dict | None] = {}
        health: dict[str, str] = {}
        for member in members:
            url = (member.get("clientURLs") or [""])[0]
            if not url:
                health[url] = "unhealthy: added, not started yet"
                continue
            answer = remote.run(etcdctl(cluster, host, [url]) + " endpoint status -w json")
            statuses[url] = (json.loads(answer.stdout) or [None])[0] if answer.rc == 0 else None
            checked = remote.run(etcdctl(cluster, host, [url]) + " endpoint health -w json")
            result = (json.loads(checked.stdout or "[]") or [{}])[0] if checked.stdout.strip().startswith("[") else {}
            health[url] = "healthy" if result.get("health") else \
                "unhealthy: " + (result.get("error") or (checked.stderr.strip().splitlines() or ["no answer"])[-1])
        return member_rows(members, statuses, health)
    finally:
        remote.close()


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_status(rows: list[MemberStatus]) -> str:
    header = ("MEMBER", "ENDPOINT", "ID", "LEADER", "DB SIZE", "RAFT TERM", "REVISION", "HEALTH")
    table = [header] + [(r.name, r.endpoint or "-", r.member_id, "yes" if r.leader else "no", _size(r.db_size),
                         "-" if r.raft_term is None else str(r.raft_term),
                         "-" if r.revision is None else str(r.revision), r.health) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in table)


@command("etcd status")
def run_status(args) -> int:
    cluster = Cluster(args.inventory, args.playbook)
    rows = status(cluster)
    print(format_status(rows))
    leaders = [r.name for r in rows if r.leader]
    return 0 if rows and all(r.healthy for r in rows) and len(leaders) == 1 else 3


# ---- replace a member ---------------------------------------------------------------------------------------

def replace_member(cluster: Cluster, host: str, log=print) -> None:
    """etcd's runbook for a failed member: remove it from the cluster on a healthy member, add it back under the
    same name and peer URL, move its old data aside, and provision it to join the existing cluster."""
    hosts = etcd_hosts(cluster)
    if host not in hosts:
        raise OpsError(f"{cluster.inventory_path}: {host} is not in group 'etcd' (members: {', '.join(hosts)})")
    others = [h for h in hosts if h != host]
    if not others:
        raise OpsError(f"{cluster.inventory_path}: {host} is the only etcd member; restore from a snapshot instead "
                       "(kfab restore)")
    rows = {r.name: r for r in status(cluster)}
    if rows.get(host) and rows[host].healthy:
        raise OpsError(f"etcd member {host} is healthy; stop it (or its host) first if it really must be replaced")
    healthy = [h for h in others if h in rows and rows[h].healthy]
    if len(healthy) < len(hosts) // 2 + 1:
        raise OpsError(f"too few healthy etcd members besides {host} ({', '.join(healthy) or 'none'} of "
                       f"{len(hosts)}): without a quorum the membership cannot change; restore from a snapshot "
                       "instead (kfab restore)")
    peer = healthy[0]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with cluster.ssh(peer) as remote:
        ctl = etcdctl(cluster, peer, [client_url(cluster, h) for h in healthy])
        members = json.loads(cluster.run(remote, ctl + " member list -w json", "etcdctl member list").stdout)
        for member in members.get("members") or []:
            if member.get("name") == host or peer_url(cluster, host) in (member.get("peerURLs") or []):
                cluster.run(remote, f"{ctl} member remove {int(member['ID']):x}", f"etcdctl member remove {host}")
                log(f"etcd member {host} ({int(member['ID']):x}) removed")
        cluster.run(remote, f"{ctl} member add {q(host)} --peer-urls={peer_url(cluster, host)}",
                    f"etcdctl member add {host}")
        log(f"etcd member {host} added back ({peer_url(cluster, host)}), to join the existing cluster")
    with cluster.ssh(host) as remote:
        data_dir = str(cluster.var(host, "etcd_data_dir", "/var/lib/etcd/kfab"))
        # Its old data (if the disk survived) belongs to the removed member: kept aside, never reused.
        cluster.run(remote, f"systemctl stop etcd.service 2>/dev/null; if [ -e {q(data_dir)} ]; then "
                            f"mv {q(data_dir)} {q(data_dir + '.replaced-' + stamp)}; fi", "moving the old data aside")
    rc = cluster.up(limit=host, extra=["etcd_initial_cluster_state=existing"])
    if rc != 0:
        raise OpsError(f"provisioning host {host} failed (kfab up --limit {host} exited {rc}; see above)")
    rows = {r.name: r for r in status(cluster)}
    if not (rows.get(host) and rows[host].healthy):
        raise OpsError(f"etcd member {host} did not become healthy: {rows.get(host)}")
    log(f"etcd member {host} is healthy; the cluster has {len(rows)} members")


@command("replace-etcd-member")
def run_replace(args) -> int:
    cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
    replace_member(cluster, args.host)
    return 0
