"""Draining against a real `kfab server` with simulated nodes (`kfab hollow-node`): real `kubectl drain` (its typed
client POSTs a protobuf Eviction to pods/<name>/eviction for each pod) and kfab's own drain (kfab.ops.drain, used
by `kfab drain`, `kfab remove-node` and `kfab upgrade`). Disruption budgets: tests/api/test_disruption_api.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from kfab.client import Client
from kfab.ops import drain as drain_mod
from tests.api.conftest import KUBECTL, start_server, stop_server
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-ops-drain")
    proc, server = start_server(data_dir)
    hollow = subprocess.Popen([sys.executable, "-m", "kfab", "hollow-node", "--kubeconfig", str(server.kubeconfig),
                               "--count", "2", "--name-prefix", "h-"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        yield server
    finally:
        hollow.terminate()
        hollow.wait(15)
        stop_server(proc)


def kubectl(server, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", str(server.kubeconfig), *args], input=input,
                          capture_output=True, text=True, timeout=120)


def pods(server, app: str) -> list[dict]:
    items = json.loads(kubectl(server, "get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready_on(server, app: str, count: int, nodes: set[str]) -> bool:
    ready = [p for p in pods(server, app) if any(c["type"] == "Ready" and c["status"] == "True"
                                                 for c in p["status"].get("conditions", []))]
    return len(ready) == count and {p["spec"]["nodeName"] for p in ready} <= nodes


def deploy_on_h0(server, name: str, replicas: int) -> None:
    """A Deployment whose pods all run on h-0 (h-1 is cordoned while they are placed)."""
    wait_until("hollow nodes", lambda: kubectl(server, "get", "node", "h-1").returncode == 0, 60)
    assert kubectl(server, "cordon", "h-1").returncode == 0
    assert kubectl(server, "create", "deployment", name, "--image=x/y:1", f"--replicas={replicas}").returncode == 0
    wait_until(f"{name} on h-0", lambda: ready_on(server, name, replicas, {"h-0"}), 60)
    assert kubectl(server, "uncordon", "h-1").returncode == 0


def test_kubectl_drain_moves_pods_off_and_cordons(cluster):
    deploy_on_h0(cluster, "kd", 2)
    proc = kubectl(cluster, "drain", "h-0", "--ignore-daemonsets", "--timeout=60s")
    assert proc.returncode == 0, proc.stderr
    assert "node/h-0 drained" in proc.stdout
    wait_until("kd on h-1", lambda: ready_on(cluster, "kd", 2, {"h-1"}), 60)
    assert json.loads(kubectl(cluster, "get", "node", "h-0", "-o", "json").stdout)["spec"]["unschedulable"]
    kubectl(cluster, "uncordon", "h-0")
    kubectl(cluster, "delete", "deployment", "kd")


def test_kfab_drain_moves_a_workload_one_pod_at_a_time(cluster):
    deploy_on_h0(cluster, "one", 3)
    seen: list[str] = []

    async def run() -> list[str]:
        async with Client.from_kubeconfig(cluster.kubeconfig) as client:
            return await drain_mod.drain(client, "h-0", timeout=60, log=seen.append)
    removed = asyncio.run(run())
    assert len(removed) == 3 and all(k.startswith("default/one-") for k in removed)
    assert seen[0] == "node/h-0 cordoned" and seen[-1] == "node/h-0 drained (3 pods removed)"
    # each removal waited for the workload to be whole again: all 3 ready on h-1 at the end
    wait_until("one on h-1", lambda: ready_on(cluster, "one", 3, {"h-1"}), 60)
    kubectl(cluster, "uncordon", "h-0")
    kubectl(cluster, "delete", "deployment", "one")


def test_kfab_drain_refuses_an_unmanaged_pod_before_cordoning(cluster):
    wait_until("hollow nodes", lambda: kubectl(cluster, "get", "node", "h-0").returncode == 0, 60)
    proc = kubectl(cluster, "run", "bare", "--image=x/y:1", "--overrides",
                   json.dumps({"spec": {"nodeName": "h-0"}}))
    assert proc.returncode == 0, proc.stderr

    async def run() -> None:
        async with Client.from_kubeconfig(cluster.kubeconfig) as client:
            await drain_mod.drain(client, "h-0", timeout=30, log=lambda _: None)
    with pytest.raises(drain_mod.DrainError, match="default/bare is not managed by a controller"):
        asyncio.run(run())
    node = json.loads(kubectl(cluster, "get", "node", "h-0", "-o", "json").stdout)
    assert not node["spec"].get("unschedulable")
    kubectl(cluster, "delete", "pod", "bare", "--grace-period=0", "--force")
