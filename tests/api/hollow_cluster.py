"""A cluster for scheduler/StatefulSet/node-lifecycle tests: a real `kfab server` (controllers and scheduler
in-process), groups of hollow nodes each in its own `kfab hollow-node` process (so one group can be stopped
to lose its nodes), real kubectl and the official client. No stand-in binder: the real scheduler binds.
Everything is stopped by PID afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubernetes import client, config

from tests.api.conftest import start_server, stop_server
from tests.api.controllers_cluster import Cluster, start_hollow_nodes, stop, wait_for


def node_ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def pod_ready(pod) -> bool:
    return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                 for c in pod.status.conditions or [])


class HollowCluster(Cluster):
    groups: dict[str, subprocess.Popen]

    def add_nodes(self, prefix: str, count: int) -> list[str]:
        """Start `count` hollow nodes named <prefix><i> in a process of their own; wait until they are Ready."""
        proc = start_hollow_nodes(self.kubeconfig, self.data_dir, count, prefix)
        self.procs.append(proc)
        self.groups[prefix] = proc
        names = [f"{prefix}{i}" for i in range(count)]

        def ready():
            found = {n.metadata.name: n for n in self.core.list_node().items}
            return all(n in found and node_ready(found[n]) for n in names)
        wait_for(ready, 30, f"hollow nodes {names} to be Ready")
        self.nodes.extend(names)
        return names

    def stop_nodes(self, prefix: str) -> None:
        """Stop the process of a group of hollow nodes (they stop renewing their Leases: a lost node)."""
        stop(self.groups.pop(prefix))


def hollow_cluster(data_dir: Path, groups: dict[str, int], *server_args: str):
    """Generator for fixtures: server (with `server_args`) + one hollow-node process per group {prefix: count}."""
    server_proc, server = start_server(data_dir, *server_args)
    api = None
    cluster = None
    try:
        api = config.new_client_from_config(config_file=str(server.kubeconfig))
        cluster = HollowCluster(data_dir, server.kubeconfig, api, [], [])
        cluster.groups = {}
        for prefix, count in groups.items():
            cluster.add_nodes(prefix, count)
        yield cluster
    finally:
        if cluster is not None:
            for proc in reversed(cluster.procs):
                stop(proc)
        if api is not None:
            api.close()
        stop_server(server_proc)


__all__ = ["HollowCluster", "client", "hollow_cluster", "node_ready", "pod_ready", "wait_for"]
