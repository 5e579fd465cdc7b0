"""A small cluster for controller tests: a real `kfab server` (controllers and scheduler in-process unless
disabled), N hollow nodes (`kfab hollow-node`), real kubectl and the official client; everything stopped by PID
afterwards."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from tests.api.conftest import REPO, run_kubectl, start_server, stop_server
from tests.waiting import wait_until

UNSCHEDULABLE = {"kfab-test/no-such-node": "true"}  # a nodeSelector no hollow node matches


def wait_for(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.1):
    """tests.waiting.wait_until in this module's older argument order (new tests: call wait_until)."""
    return wait_until(what, predicate, timeout, interval)


def start_kfab(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kfab", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=REPO)


def stop(proc: subprocess.Popen) -> None:
    stop_server(proc)  # SIGTERM, SIGKILL if it lingers: the same for every kfab process a test starts


@dataclass
class Cluster:
    data_dir: Path
    kubeconfig: Path
    api: client.ApiClient
    nodes: list[str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        return run_kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)


def start_hollow_nodes(kubeconfig: Path, data_dir: Path, count: int, prefix: str, *extra: str) -> subprocess.Popen:
    return start_kfab("hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(count), "--name-prefix", prefix,
                      "--lease-interval", "2", *extra, log=data_dir / f"{prefix}hollow.log")


def running_cluster(data_dir: Path, nodes: int = 3, server_args: tuple[str, ...] = (),
                    hollow_args: tuple[str, ...] = ()):
    """Generator for fixtures: a server and hollow nodes; torn down by PID at the end."""
    server_proc, server = start_server(data_dir, *server_args)
    procs = [server_proc]
    api = None
    try:
        names = [f"hollow-{i}" for i in range(nodes)]
        procs.append(start_hollow_nodes(server.kubeconfig, data_dir, nodes, "hollow-", *hollow_args))
        api = config.new_client_from_config(config_file=str(server.kubeconfig))
        core = client.CoreV1Api(api)

        def all_ready():
            found = {n.metadata.name: n for n in core.list_node().items}
            return all(n in found and any(c.type == "Ready" and c.status == "True"
                                          for c in found[n].status.conditions or []) for n in names)
        wait_for(all_ready, 30, "hollow nodes to register Ready")
        yield Cluster(data_dir, server.kubeconfig, api, names, procs)
    finally:
        if api is not None:
            api.close()
        for proc in reversed(procs[1:]):
            stop(proc)
        stop_server(server_proc)
