"""`kfab upgrade -i INVENTORY [--wheelhouse DIR]`: a new kfab rolled out host by host, the cluster serving throughout.

The new kfab is a wheelhouse (kfab and its dependencies as wheels): --wheelhouse DIR, or by default one built
from the sources this kfab runs from. Every host gets the same one (`-e kfab_wheelhouse=DIR` for site.yml),
so edits to the tree during the rollout change nothing. Order, as `kubeadm upgrade` and k3s's upgrade
guide have it: control-plane hosts first, one at a time (site.yml reinstalls kfab when the wheelhouse content
changed, restarts the API server, waits for /readyz, then restarts the controller-manager and scheduler);
then the other hosts that are not workers; then the workers one at a time: drain (pods move to the other
nodes, one per workload at a time), site.yml for that host, wait until its Node is Ready, uncordon — a
worker that runs this wheelhouse already (a rerun after a failure) is left alone.
Before anything changes: every host answers SSH and every worker's Node is Ready.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kfab.client import Client
from kfab.ops import drain as drain_mod
from kfab.ops.cluster import Cluster, OpsError
from kfab.ops.nodes import log


def check_wheelhouse(path: Path | None) -> Path:
    if path is None:
        from kfab.ship.wheelhouse import WheelhouseError, build
        try:
            return build()
        except WheelhouseError as exc:
            raise OpsError(str(exc)) from None
    if not path.is_dir():
        raise OpsError(f"--wheelhouse {path}: no such directory")
    if not any(path.glob("kfab-*.whl")):
        raise OpsError(f"--wheelhouse {path}: holds no kfab wheel (kfab-*.whl)")
    return path.resolve()


def wheel_version(wheelhouse: Path) -> str:
    wheel = next(iter(sorted(wheelhouse.glob("kfab-*.whl"))), None)
    return wheel.name.split("-")[1] if wheel else "?"


def installed_already(cluster: Cluster, host: str, wheelhouse: Path) -> bool:
    """Whether the host's kfab venv was filled from exactly this wheelhouse (the venv module's stamp)."""
    from kfab.provision.modules.venv import STAMP, wheelhouse_digest
    wheels = {p.name: p.read_bytes() for p in wheelhouse.glob("*.whl")}
    stamp = (wheelhouse_digest(wheels, ["kfab"]) + "\n").encode()
    venv = str(cluster.var(host, "kfab_venv", "/opt/kfab/venv")).rstrip("/")
    with cluster.ssh(host) as remote:
        current = remote.file(f"{venv}/{STAMP}", content=True)
    return current is not None and current.content == stamp


def preflight(cluster: Cluster) -> None:
    for host in cluster.inventory.hosts:
        cluster.connect(host).close()

    async def nodes_ready(client: Client) -> None:
        for host in cluster.group("workers"):
            node = cluster.node_name(host)
            obj = await drain_mod.get_node(client, node)
            if obj is None or not drain_mod.is_ready(obj):
                raise OpsError(f"node {node} (host {host}) is {'missing' if obj is None else 'not Ready'}: an "
                               f"upgrade needs a healthy cluster (kfab add-node -i {cluster.inventory_path} "
                               f"{host}, or remove it from group workers)")
    cluster.api(nodes_ready)


def upgrade(cluster: Cluster, wheelhouse: Path, timeout: float, extra: list[str] = ()) -> None:
    control = cluster.control_plane
    workers = [h for h in cluster.group("workers") if h not in control]
    others = [h for h in cluster.inventory.hosts if h not in control and h not in workers]
    preflight(cluster)
    extra = [*extra, f"kfab_wheelhouse={wheelhouse}"]

    def provision(host: str) -> None:
        started = time.monotonic()
        log(f"--- upgrading {host}")
        rc = cluster.up(limit=host, extra=extra)
        if rc != 0:
            raise OpsError(f"upgrading host {host} failed (kfab up --limit {host} exited {rc}; see above); "
                           f"hosts before it are upgraded, the others not yet")
        log(f"--- {host} upgraded ({time.monotonic() - started:.1f}s)")

    for host in control + others:
        provision(host)
        cluster.api(drain_mod.node_names)    # the API answers again before the next host
    for host in workers:
        node = cluster.node_name(host)
        if installed_already(cluster, host, wheelhouse):
            log(f"--- {host} runs this kfab already: not drained")    # e.g. a rerun after a failure
            cluster.api(drain_mod.set_unschedulable, node, False)
            continue

        async def drain_it(client: Client) -> None:
            await drain_mod.drain(client, node, timeout=timeout, log=log)
        cluster.api(drain_it)
        provision(host)

        async def back(client: Client) -> None:
            await drain_mod.wait_ready(client, node, timeout)
            await drain_mod.set_unschedulable(client, node, False)
        cluster.api(back)
        log(f"node/{node} uncordoned")


def run(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
        cluster.control_plane
        wheelhouse = check_wheelhouse(args.wheelhouse)
        log(f"upgrading cluster {cluster.name} to kfab {wheel_version(wheelhouse)} ({wheelhouse})")
        upgrade(cluster, wheelhouse, args.timeout)
    except OpsError as exc:
        print(f"kfab upgrade: {exc}", file=sys.stderr)
        return 1
    log(f"cluster {cluster.name} upgraded")
    return 0
