"""Control-plane figures with hollow nodes (issue 4): a `kfab server` (controllers and scheduler in-process)
on a fresh data dir, `kfab hollow-node --count N`, then:

    deployment-1000   time from creating a Deployment of --replicas (1000) pods to all of them Running
    rolling-100       time for a RollingUpdate (defaults: 25%/25%) of a 100-replica Deployment to complete
    replacement       time from deleting one pod to its replacement Running (--repeat times; target <= 1 s)

    .venv/bin/python bench/control.py [--nodes 100] [--replicas 1000] [--only NAME ...] [--split]

--split runs the API server alone (`kfab server --disable-controllers`) with `kfab controller-manager` and
`kfab scheduler` as processes of their own, as on a multi-core control-plane host, instead of in-process.

Timings are taken from the API (a watch on pods / deployments through kfab.client), not from logs. Every
process started here is stopped by PID at the end. Add a measurement by adding to MEASUREMENTS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hollow_cluster import run_measurements, start, start_server, stop, wait_until  # bench/ is on sys.path

from kfab.client import Client, rt_of

POD = rt_of("Pod")
DEPLOYMENT = rt_of("Deployment", "apps/v1")


def deployment(name: str, replicas: int, image: str = "nginx:1.25") -> dict:
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "resources": {"requests": {"cpu": "1m",
                                                                                      "memory": "1Mi"}}}]}}}}


class PodCounter:
    """Running, not-terminating pods of one app, kept from a watch (no polling of big lists)."""

    def __init__(self, client: Client, ns: str, app: str):
        self.client, self.ns, self.app = client, ns, app
        self.running: dict[str, float] = {}   # name -> when it was first seen Running
        self.changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        listed = await self.client.list(POD, self.ns, label_selector=f"app={self.app}")
        for p in listed["items"]:
            self._see(p)
        self._task = asyncio.create_task(self._follow(listed["metadata"]["resourceVersion"]))

    def _see(self, pod: dict, deleted: bool = False) -> None:
        name = pod["metadata"]["name"]
        if deleted or pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
            self.running.pop(name, None)
        elif name not in self.running:
            self.running[name] = time.perf_counter()
        self.changed.set()

    async def _follow(self, rv: str) -> None:
        async for kind, pod in self.client.watch(POD, self.ns, rv, label_selector=f"app={self.app}"):
            if kind != "BOOKMARK":
                self._see(pod, kind == "DELETED")

    async def wait_for(self, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def deployment_1000(client: Client, ns: str, args) -> dict:
    counter = PodCounter(client, ns, "big")
    await counter.start()
    t0 = time.perf_counter()
    await client.create(DEPLOYMENT, deployment("big", args.replicas), ns)
    try:
        await counter.wait_for(lambda c: len(c.running) >= args.replicas, 600)
    finally:
        await counter.stop()
    elapsed = time.perf_counter() - t0
    await client.delete(DEPLOYMENT, ns, "big")
    return {"replicas": args.replicas, "seconds_to_all_running": round(elapsed, 2),
            "pods_per_second": round(args.replicas / elapsed, 1)}


async def _rolled_out(client: Client, ns: str, name: str, replicas: int, generation: int) -> bool:
    d = await client.get(DEPLOYMENT, ns, name)
    s = d.get("status") or {}
    return (s.get("observedGeneration", 0) >= generation and s.get("updatedReplicas") == replicas
            and s.get("replicas") == replicas and s.get("availableReplicas") == replicas)


async def rolling_100(client: Client, ns: str, args) -> dict:
    replicas = 100
    d = await client.create(DEPLOYMENT, deployment("roll", replicas), ns)
    await wait_until(lambda: _rolled_out(client, ns, "roll", replicas, 1), 300, "initial rollout")
    t0 = time.perf_counter()
    patched = await client.patch(DEPLOYMENT, ns, "roll", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.26"}]}}}}, "strategic")
    await wait_until(lambda: _rolled_out(client, ns, "roll", replicas, patched["metadata"]["generation"]), 600,
                     "rolling update")
    elapsed = time.perf_counter() - t0
    await client.delete(DEPLOYMENT, ns, "roll")
    del d
    return {"replicas": replicas, "seconds": round(elapsed, 2)}


async def replacement(client: Client, ns: str, args) -> dict:
    replicas = 10
    await client.create(DEPLOYMENT, deployment("heal", replicas), ns)
    counter = PodCounter(client, ns, "heal")
    await counter.start()
    times = []
    try:
        await counter.wait_for(lambda c: len(c.running) == replicas, 120)
        for _ in range(args.repeat):
            victim = sorted(counter.running)[0]
            before = set(counter.running)
            t0 = time.perf_counter()
            await client.delete(POD, ns, victim)
            await counter.wait_for(lambda c: len(c.running) == replicas and set(c.running) - before, 30)
            new = (set(counter.running) - before).pop()
            times.append(counter.running[new] - t0)
    finally:
        await counter.stop()
    await client.delete(DEPLOYMENT, ns, "heal")
    return {"samples": len(times), "median_seconds": round(statistics.median(times), 3),
            "max_seconds": round(max(times), 3)}


MEASUREMENTS = {"deployment-1000": deployment_1000, "rolling-100": rolling_100, "replacement": replacement}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10, help="pod deletions for the replacement figure")
    parser.add_argument("--only", nargs="*", choices=sorted(MEASUREMENTS))
    parser.add_argument("--split", action="store_true", help="controllers and scheduler as separate processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-control-") as tmp:
        data_dir = Path(tmp)
        try:
            server, kubeconfig = start_server(data_dir, *(["--disable-controllers"] if args.split else []))
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        procs = [server]
        try:
            if args.split:
                for component in ("controller-manager", "scheduler"):
                    procs.append(start([component, "--kubeconfig", str(kubeconfig)], data_dir / f"{component}.log"))
            procs.append(start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(args.nodes)],
                               data_dir / "hollow.log"))
            results = asyncio.run(run_measurements(MEASUREMENTS, args, kubeconfig, args.nodes))
            print(json.dumps({"nodes": args.nodes, "mode": "split" if args.split else "in-process", **results},
                             indent=2))
        finally:
            for proc in reversed(procs):
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
