"""`kfab rotate-certs -i INVENTORY`: new serving and client certificates from the same cluster CA, rolled out.

Every pair the CA issued (kept in kfab_pki_dir/issued/ on this machine) is set aside in
`issued.rotated-<time>/`, so the next run of role pki issues new ones (new keys, new serials). Then site.yml
runs host by host — control plane first, then the other hosts, the workers last — and on each host the
services that read certificates are restarted one at a time, each checked before the next (etcd healthy,
API server /readyz, the others active; a worker's Node Ready again). The CA stays: certificates not yet
rotated remain valid during the rollout, so nothing loses its connection. The admin kubeconfig on this
machine is rewritten with the new admin pair (`kfab kubeconfig -i` to merge it again).
"""

from __future__ import annotations

import datetime
import sys
import time

from kfab.ops import drain as drain_mod
from kfab.ops.backup import etcd_local, wait_api
from kfab.ops.cluster import Cluster, OpsError
from kfab.ops.nodes import log

# Restart order on one host: the store, then the API server, then its clients.
RESTART_ORDER = ("etcd", "kfab-apiserver", "kfab-controller-manager", "kfab-scheduler", "kfab-node", "kfab-proxy",
                 "kfab-dns")


def _check(cluster: Cluster, remote, host: str, unit: str) -> None:
    if unit == "etcd":
        url, tls = etcd_local(cluster, host)
        cluster.run(remote, f"curl -sS --fail --retry 60 --retry-delay 1 --retry-all-errors {tls} {url}/health "
                            f">/dev/null", "waiting for etcd to be healthy")
    elif unit == "kfab-apiserver":
        wait_api(cluster, remote, host)
    else:
        cluster.run(remote, f"for i in $(seq 50); do systemctl is-active -q {unit} && exit 0; sleep 0.2; done; "
                            f"systemctl is-active {unit}", f"waiting for {unit} to run")


def restart_services(cluster: Cluster, host: str) -> list[str]:
    restarted = []
    with cluster.ssh(host) as remote:
        for unit in RESTART_ORDER:
            if remote.unit(f"{unit}.service").active != "active":
                continue
            cluster.run(remote, f"systemctl restart {unit}.service", f"restarting {unit}")
            _check(cluster, remote, host, unit)
            restarted.append(unit)
    return restarted


def rotate(cluster: Cluster, extra: list[str] = ()) -> None:
    pki = cluster.pki_dir
    if not (pki / "ca.crt").is_file() or not (pki / "ca.key").is_file():
        raise OpsError(f"{pki}: no cluster CA (ca.crt, ca.key): is the cluster of {cluster.inventory_path} "
                       f"installed from this machine?")
    control = cluster.control_plane
    workers = [h for h in cluster.group("workers") if h not in control]
    order = control + [h for h in cluster.inventory.hosts if h not in control and h not in workers] + workers
    for host in order:
        cluster.connect(host).close()          # every host reachable before anything changes
    issued = pki / "issued"
    if issued.is_dir():
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        issued.rename(pki / f"issued.rotated-{stamp}")
        log(f"old certificates kept in {pki / f'issued.rotated-{stamp}'}")
    for host in order:
        started = time.monotonic()
        log(f"--- new certificates for {host}")
        rc = cluster.up(limit=host, extra=list(extra))
        if rc != 0:
            raise OpsError(f"kfab up --limit {host} exited {rc} (see above); run `kfab rotate-certs` again to go on "
                           f"(hosts done so far keep their new certificates)")
        restarted = restart_services(cluster, host)
        if host in workers:
            node = cluster.node_name(host)

            async def ready(client) -> None:
                await drain_mod.wait_ready(client, node, 120)
            cluster.api(ready)
        log(f"--- {host}: restarted {', '.join(restarted) or 'nothing'} ({time.monotonic() - started:.1f}s)")


def run(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
        rotate(cluster)
    except OpsError as exc:
        print(f"kfab rotate-certs: {exc}", file=sys.stderr)
        return 1
    log(f"cluster {cluster.name}: certificates rotated")
    return 0
