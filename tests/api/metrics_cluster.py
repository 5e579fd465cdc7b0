"""A cluster whose nodes report resource metrics: a real `kfab server` scraping every second
(--metric-resolution 1), hollow nodes serving synthetic /metrics/resource from the server's CA
(`kfab hollow-node --data-dir`), real kubectl and the official client. Stopped by PID afterwards."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config

from tests.api.conftest import start_server
from tests.api.controllers_cluster import Cluster, start_kfab, stop, wait_for

RESOLUTION = "1"


def metrics_cluster(data_dir: Path, nodes: int = 2):
    """Generator for fixtures: the server and `nodes` hollow nodes named metrics-0.., all Ready."""
    server_proc, server = start_server(data_dir, "--metric-resolution", RESOLUTION)
    procs = [server_proc]
    api = None
    try:
        procs.append(start_kfab("hollow-node", "--kubeconfig", str(server.kubeconfig), "--count", str(nodes),
                                "--name-prefix", "metrics-", "--lease-interval", "2", "--data-dir", str(data_dir),
                                log=data_dir / "hollow.log"))
        api = config.new_client_from_config(config_file=str(server.kubeconfig))
        names = [f"metrics-{i}" for i in range(nodes)]

        def all_ready():
            found = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
            return all(n in found and any(c.type == "Ready" and c.status == "True"
                                          for c in found[n].status.conditions or []) for n in names)
        wait_for(all_ready, 30, "hollow nodes to register Ready")
        yield Cluster(data_dir, server.kubeconfig, api, names, procs)
    finally:
        if api is not None:
            api.close()
        for proc in reversed(procs):
            stop(proc)
