"""`kfab add-node`, `kfab remove-node`, `kfab drain`, `kfab uncordon`: Nodes joining and leaving a running cluster.

add-node works as kubespray's scale.yml: the new host is first written into the inventory's `workers` group
(with its ansible_host), then `kfab add-node -i INV HOST` runs site.yml for that host alone (`kfab up --limit
HOST`) and waits until its Node is Ready and schedulable. The other hosts are not touched: the pod network
routes to the new node's podCIDR are written by every node agent as soon as the Node registers.
"""

from __future__ import annotations

import time

from kfab.client import APIStatusError, Client, rt_of
from kfab.ops import drain as drain_mod
from kfab.ops.cluster import Cluster, OpsError, command
from kfab.objects.meta import spec_of

# What a worker runs (role workers/node-agent); stopped and disabled when its Node is removed.
WORKER_UNITS = ("kfab-node", "kfab-proxy", "kfab-dns")
LEASE = rt_of("Lease", "coordination.k8s.io/v1")


def log(message: str) -> None:
    print(message, flush=True)


async def _node_or_error(client: Client, cluster: Cluster, node: str) -> dict:
    obj = await drain_mod.get_node(client, node)
    if obj is None:
        names = await drain_mod.node_names(client)
        raise OpsError(f"cluster {cluster.name} ({cluster.server_url}) has no node {node!r} "
                       f"(nodes: {', '.join(names) or 'none'})")
    return obj


# ---- add-node -------------------------------------------------------------------------------------------

def add_node(cluster: Cluster, host: str, timeout: float, extra: list[str] = ()) -> float:
    """Provision `host` as a worker and wait for its Node; returns the seconds it took."""
    cluster.require_host(host)
    if host not in cluster.group("workers"):
        raise OpsError(f"{cluster.inventory_path}: host {host} is not in group 'workers': add it under "
                       f"workers: hosts: (with its ansible_host) and run `kfab add-node` again")
    node = cluster.node_name(host)
    cluster.api(drain_mod.node_names)      # the cluster answers before anything changes
    started = time.monotonic()
    rc = cluster.up(limit=host, extra=extra)
    if rc != 0:
        raise OpsError(f"provisioning host {host} failed (kfab up --limit {host} exited {rc}; see above)")

    async def ready(client: Client) -> None:
        obj = await drain_mod.wait_ready(client, node, timeout)
        if spec_of(obj).get("unschedulable"):
            await drain_mod.set_unschedulable(client, node, False)
    cluster.api(ready)
    return time.monotonic() - started


@command("add-node")
def run_add_node(args) -> None:
    cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
    seconds = add_node(cluster, args.host, args.timeout)
    log(f"node/{cluster.node_name(args.host)} is Ready and schedulable ({seconds:.1f}s)")


# ---- remove-node ----------------------------------------------------------------------------------------

def stop_worker_units(cluster: Cluster, remote) -> list[str]:
    stopped = []
    for unit in WORKER_UNITS:
        if remote.unit(f"{unit}.service").exists:
            cluster.run(remote, f"systemctl disable --now {unit}.service", f"stopping {unit}")
            stopped.append(unit)
    return stopped


def remove_node(cluster: Cluster, node: str, *, host_gone: bool = False, timeout: float = 300,
                force: bool = False, delete_emptydir_data: bool = False) -> None:
    cluster.api(_node_or_error, cluster, node)
    host = cluster.host_of_node(node)
    if host is None and not host_gone:
        raise OpsError(f"{cluster.inventory_path}: no host runs node {node} (its agent could not be stopped); "
                       f"if the host is gone for good, pass --host-gone")
    remote = None if host_gone else cluster.connect(host)   # reachable before anything changes
    try:
        async def drain_it(client: Client) -> None:
            await drain_mod.drain(client, node, timeout=timeout, force=force or host_gone,
                                  delete_emptydir_data=delete_emptydir_data or host_gone,
                                  grace_period=0 if host_gone else None, log=log)
        cluster.api(drain_it)
        if remote is not None:
            stopped = stop_worker_units(cluster, remote)
            log(f"host {host}: stopped and disabled {', '.join(stopped) or 'no kfab units (none installed)'}")
    finally:
        if remote is not None:
            remote.close()

    async def delete(client: Client) -> None:
        try:
            await client.delete(drain_mod.NODE, None, node)
        except APIStatusError as exc:
            if not exc.not_found:
                raise
        try:
            await client.delete(LEASE, "kube-node-lease", node)
        except APIStatusError as exc:
            if not exc.not_found:
                raise
    cluster.api(delete)
    log(f"node/{node} deleted")


@command("remove-node")
def run_remove_node(args) -> None:
    cluster = Cluster(args.inventory, args.playbook)
    remove_node(cluster, args.node, host_gone=args.host_gone, timeout=args.timeout, force=args.force,
                delete_emptydir_data=args.delete_emptydir_data)


# ---- drain / uncordon -----------------------------------------------------------------------------------

@command("drain")
def run_drain(args) -> None:
    cluster = Cluster(args.inventory, args.playbook)

    async def drain_it(client: Client) -> None:
        await _node_or_error(client, cluster, args.node)
        await drain_mod.drain(client, args.node, timeout=args.timeout, force=args.force,
                              delete_emptydir_data=args.delete_emptydir_data, log=log)
    cluster.api(drain_it)


@command("uncordon")
def run_uncordon(args) -> None:
    cluster = Cluster(args.inventory, args.playbook)

    async def uncordon(client: Client) -> None:
        await _node_or_error(client, cluster, args.node)
        await drain_mod.set_unschedulable(client, args.node, False)
    cluster.api(uncordon)
    log(f"node/{args.node} uncordoned")
