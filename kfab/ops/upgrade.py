"""`kfab upgrade -i INVENTORY [--wheelhouse DIR]`: a new kfab rolled out host by host, the cluster serving throughout.

The new kfab is a wheelhouse (kfab and its dependencies as wheels): --wheelhouse DIR, or by default one built
from the sources this kfab runs from. Every host gets the same one (`-e kfab_wheelhouse=DIR` for site.yml),
so edits to the tree during the rollout change nothing. Order, as `kubeadm upgrade` and k3s's upgrade
guide have it: control-plane hosts first, one at a time (site.yml reinstalls kfab when the wheelhouse content
changed, restarts the API server, waits for /readyz, then restarts the controller-manager and scheduler);
then the other hosts that are not workers; then the workers one at a time: drain (pods move to the other
nodes, one per workload at a time), site.yml for that host, wait until its Node is Ready, start and stop a
canary pod there (kfab/ops/canary.py: Ready alone does not prove the agent can run pods), uncordon — a
worker that runs this wheelhouse already (a rerun after a failure) is left alone. A canary that fails stops
the upgrade with the host cordoned, the agent's last errors and the next command.
Before anything changes: every host answers SSH and every worker's Node is Ready.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kfab.client import Client
from kfab.ops import drain as drain_mod
from kfab.ops.canary import CanaryError, controllers_answer, image_for, run_canary
from kfab.ops.cluster import Cluster, OpsError
from kfab.ops.nodes import log
from kfab.objects.meta import status_of

CANARY_TIMEOUT = 120.0   # start and stop a pod whose image is on the node already: seconds even on a loaded host


def check_wheelhouse(path: Path | None) -> Path:
    if path is None:
        from kfab.install.wheelhouse import WheelhouseError, build
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


def agent_errors(cluster: Cluster, host: str, lines: int = 15) -> str:
    """The node agent's last warnings and errors on `host`, for a message an operator can act on."""
    try:
        with cluster.ssh(host) as remote:
            out = remote.run(f"journalctl -u kfab-node -p warning -n {lines} --no-pager -o cat").stdout
    except (OpsError, OSError) as exc:
        return f"(journal not read: {exc})"
    return out.strip() or "(no warnings in its journal)"


def check_canary(cluster: Cluster, host: str, node: str, image: str | None, timeout: float) -> None:
    if image is None:
        log(f"--- {host}: no image known to run there, canary pod skipped")
        return
    try:
        took = cluster.api(run_canary, node, image, timeout)
    except CanaryError as exc:
        raise OpsError(f"{exc}\nhost {host} is upgraded but its node agent cannot run pods; node/{node} is left "
                       f"cordoned. Its last errors (journalctl -u kfab-node):\n{agent_errors(cluster, host)}\n"
                       f"Look at the host (kfab lab ssh / ssh {host}: systemctl status kfab-node podman.socket; "
                       f"podman pod ps -a), then run `kfab upgrade -i {cluster.inventory_path}` again (upgraded "
                       f"hosts are skipped) or `kfab uncordon -i {cluster.inventory_path} {node}`") from None
    log(f"--- {host}: canary pod started and stopped on node/{node} ({took:.1f}s)")


async def cluster_image(client: Client) -> str | None:
    """An image some pod of the cluster runs (the canary's image when the drained node had no pods)."""
    return image_for([p for p in (await client.list(drain_mod.POD))["items"]
                      if status_of(p).get("phase") == "Running"])


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
    if control:
        # The API answering is not enough: drained pods leave the Services' endpoints only once the
        # restarted controller-manager runs (slow to start on a loaded host).
        try:
            took = cluster.api(controllers_answer, min(timeout, CANARY_TIMEOUT))
        except CanaryError as exc:
            raise OpsError(f"{exc}; no worker was drained yet. Look at `journalctl -u kfab-controller-manager` on "
                           f"{', '.join(control)}, then run `kfab upgrade -i {cluster.inventory_path}` again") from None
        log(f"--- controller-manager answers ({took:.1f}s)")
    for host in workers:
        node = cluster.node_name(host)
        if installed_already(cluster, host, wheelhouse):
            log(f"--- {host} runs this kfab already: not drained")    # e.g. a rerun after a failure
            check_canary(cluster, host, node, cluster.api(cluster_image), min(timeout, CANARY_TIMEOUT))
            cluster.api(drain_mod.set_unschedulable, node, False)
            continue

        async def drain_it(client: Client) -> str | None:
            image = image_for(await drain_mod.pods_on(client, node)) or await cluster_image(client)
            await drain_mod.drain(client, node, timeout=timeout, log=log)
            return image
        image = cluster.api(drain_it)
        provision(host)
        cluster.api(drain_mod.wait_ready, node, timeout)
        check_canary(cluster, host, node, image, min(timeout, CANARY_TIMEOUT))
        cluster.api(drain_mod.set_unschedulable, node, False)
        log(f"node/{node} uncordoned")


def run(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
        _ = cluster.control_plane   # no control-plane host: that error before any other
        wheelhouse = check_wheelhouse(args.wheelhouse)
        log(f"upgrading cluster {cluster.name} to kfab {wheel_version(wheelhouse)} ({wheelhouse})")
        upgrade(cluster, wheelhouse, args.timeout)
    except OpsError as exc:
        print(f"kfab upgrade: {exc}", file=sys.stderr)
        return 1
    log(f"cluster {cluster.name} upgraded")
    return 0
