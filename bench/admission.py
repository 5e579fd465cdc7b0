"""Cost of the admission chain per write, and Service allocation throughput on SQLite (and etcd with --etcd).

Prints: p50/p99 microseconds of admit() per kind (defaults + schema + validation, namespace lookup included;
for Pods also the ServiceAccount, LimitRanger, Priority and ResourceQuota plugins), then the same for a Pod in a
namespace with a LimitRange and a ResourceQuota (defaults applied, quota charged: one store write per admit),
then Services created per second with N concurrent creates (ClusterIP + NodePort, each one store key).

Usage: .venv/bin/python bench/admission.py [--iterations N] [--services N] [--etcd]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kfab.api.admission import AdmissionChain, AdmissionRequest  # noqa: E402
from kfab.objects.registry import REGISTRY  # noqa: E402
from kfab.store import KeyExists, open_store  # noqa: E402

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                       "template": {"metadata": {"labels": {"app": "nginx"}},
                                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                             "ports": [{"containerPort": 80}]}]}}}}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game-demo", "namespace": "default"},
             "data": {"player_initial_lives": "3", "game.properties": "enemy.types=aliens,monsters\n"}}


def request(obj: dict, operation: str = "CREATE", old: dict | None = None) -> AdmissionRequest:
    rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
    return AdmissionRequest(operation, rt, None, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                            copy.deepcopy(obj), old, None)


async def admit_costs(chain: AdmissionChain, iterations: int) -> None:
    for obj in (DEPLOYMENT, POD, CONFIGMAP):
        times = []
        for _ in range(iterations):
            req = request(obj)
            start = time.perf_counter()
            await chain.admit(req)
            times.append((time.perf_counter() - start) * 1e6)
        times.sort()
        print(f"admit {obj['kind']:<11} p50 {statistics.median(times):7.0f} us   "
              f"p99 {times[int(len(times) * 0.99) - 1]:7.0f} us")


async def policed_pod_cost(chain: AdmissionChain, store, iterations: int) -> None:
    """A Pod admitted where a LimitRange defaults it and a ResourceQuota counts it (and is charged)."""
    ns = "policed"
    await store.create(REGISTRY.by_kind("v1", "Namespace").store_key(None, ns),
                       json.dumps({"metadata": {"name": ns}}).encode())
    await store.create(REGISTRY.by_kind("v1", "ServiceAccount").store_key(ns, "default"),
                       json.dumps({"metadata": {"name": "default", "namespace": ns, "uid": "sa"}}).encode())
    await store.create(REGISTRY.by_kind("v1", "LimitRange").store_key(ns, "lr"), json.dumps(
        {"metadata": {"name": "lr", "namespace": ns}, "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "200m", "memory": "64Mi"}, "max": {"cpu": "2"},
             "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]}}).encode())
    hard = {"pods": "1000000", "requests.cpu": "100000", "limits.memory": "100000Gi"}
    await store.create(REGISTRY.by_kind("v1", "ResourceQuota").store_key(ns, "q"), json.dumps(
        {"metadata": {"name": "q", "namespace": ns}, "spec": {"hard": hard},
         "status": {"hard": hard, "used": {"pods": "0", "requests.cpu": "0", "limits.memory": "0"}}}).encode())
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    times = []
    for _ in range(iterations):
        req = request(bare)
        start = time.perf_counter()
        await chain.admit(req)
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    print(f"admit Pod (LimitRange + ResourceQuota charged) p50 {statistics.median(times):7.0f} us   "
          f"p99 {times[int(len(times) * 0.99) - 1]:7.0f} us")


async def allocation_rate(chain: AdmissionChain, count: int, label: str) -> None:
    async def one(i: int) -> None:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"b{i}", "namespace": "default"},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
        async with chain.admitted(request(svc)):
            pass

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    took = time.perf_counter() - start
    print(f"{label}: {count} concurrent NodePort Services allocated in {took:.2f} s ({count / took:.0f}/s)")


async def run(url: str, label: str, iterations: int, services: int) -> None:
    store = await open_store(url)
    try:
        try:
            await store.create(REGISTRY.by_kind("v1", "Namespace").store_key(None, "default"),
                               json.dumps({"metadata": {"name": "default"}}).encode())
        except KeyExists:
            pass
        # The serviceaccount controller's work: pods run as (and admission requires) `default`.
        await store.create(REGISTRY.by_kind("v1", "ServiceAccount").store_key("default", "default"),
                           json.dumps({"metadata": {"name": "default", "namespace": "default", "uid": "sa"}}).encode())
        chain = AdmissionChain(store)
        await admit_costs(chain, iterations)
        await policed_pod_cost(chain, store, iterations)
        await allocation_rate(chain, services, label)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--etcd", action="store_true", help="also on a real 3-member etcd cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(f"sqlite:///{tmp}/state.db", "sqlite", args.iterations, args.services))
    if args.etcd:
        from tests.etcd_cluster import EtcdCluster

        with EtcdCluster() as cluster:
            asyncio.run(run(cluster.url, "etcd", args.iterations, args.services))


if __name__ == "__main__":
    main()
