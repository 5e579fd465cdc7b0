"""Control-plane memory (issue 19): `kfab server` RSS (VmRSS of /proc/PID/status) idle, with --nodes hollow nodes
(`kfab hollow-node`: Node status, Lease renewals every 10 s, pods made Running) and --pods Pods created, bound
by the in-process scheduler and Running, right after a load (lists of everything, --large ConfigMaps of
512 KiB written and listed), and --settle and --returned seconds after the load ended (is the memory given back?).

    .venv/bin/python bench/memory.py [--nodes 100] [--pods 1000] [--large 20] [--compare-ref GIT-REV]

--compare-ref runs the same steps on the `kfab server` of an older commit first (a git worktree in /tmp; the
hollow nodes and this client are this tree's for both), so both columns come from one run on the same machine.
Goal: <= 120 MB with 1,000 pods and 100 nodes, and memory returned after load. Every process started here is
stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

from api import REPO, worktree  # bench/ is on sys.path
from hollow_cluster import ready_nodes, start, stop, wait_until
from tests.api.conftest import stop_server
from tests.store.apiservers import start_apiserver

from kfab.client import APIStatusError, Client, rt_of

NS = "bench-memory"
POD, CONFIGMAP, NODE = rt_of("Pod"), rt_of("ConfigMap"), rt_of("Node")
NAMESPACE, SERVICEACCOUNT = rt_of("Namespace"), rt_of("ServiceAccount")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def pod(i: int) -> dict:
    return {"metadata": {"name": f"pod-{i:05d}", "namespace": NS, "labels": {"app": f"app-{i % 20}"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                     "env": [{"name": f"VAR_{k}", "value": "x" * 40} for k in range(5)],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def bounded(calls, limit: int = 16) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in calls))


async def measure(kubeconfig: Path, workdir: Path, pid: int, args) -> dict:
    figures = {}
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-bench-memory", pool_size=16) as c:
        await asyncio.sleep(args.settle)
        figures["idle"] = rss_mb(pid)
        hollow = start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(args.nodes)],
                       workdir / "hollow.log")
        try:
            await ready_nodes(c, args.nodes)
            await c.create(NAMESPACE, {"metadata": {"name": NS}})

            async def service_account():  # made by the in-process controllers; pods need it (admission)
                with contextlib.suppress(APIStatusError):
                    return await c.get(SERVICEACCOUNT, NS, "default")

            await wait_until(service_account, 60, "the namespace's default ServiceAccount")
            await bounded(c.create(POD, pod(i)) for i in range(args.pods))

            async def all_running():
                pods = (await c.list(POD, NS))["items"]
                return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) >= args.pods

            await wait_until(all_running, 600, f"{args.pods} pods Running", 2)
            await asyncio.sleep(args.settle)
            figures[f"{args.nodes} hollow nodes + {args.pods} pods Running"] = rss_mb(pid)
            big = {"blob": "x" * (512 * 1024)}
            await bounded(c.create(CONFIGMAP, {"metadata": {"name": f"large-{i}", "namespace": NS}, "data": big})
                          for i in range(args.large))
            for _ in range(5):
                await asyncio.gather(c.list(POD), c.list(NODE), c.list(CONFIGMAP, NS))
            figures["right after load (lists, large ConfigMaps)"] = rss_mb(pid)
            await bounded(c.delete(CONFIGMAP, NS, f"large-{i}") for i in range(args.large))
            await asyncio.sleep(args.settle)
            figures[f"{args.settle:g} s after load (large ConfigMaps deleted)"] = rss_mb(pid)
            # Before d8cce1e the watch decoding cache kept the last 256 events' objects whatever their size: with
            # 100 hollow nodes renewing Leases (10 events/s) the large ones left it ~30 s after the load. Now it is
            # bounded by bytes too, and garbage cycles are collected every 30 s (14712b0): this reading shows
            # whether what is left is returned.
            await asyncio.sleep(max(0.0, args.returned - args.settle))
            figures[f"{args.returned:g} s after load"] = rss_mb(pid)
        finally:
            stop(hollow)
    return figures


def run(repo: Path, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="kfab-bench-memory-") as tmp:
        tmp = Path(tmp)
        proc, server = start_apiserver(tmp / "server", "", command="server", repo=repo)
        try:
            return asyncio.run(measure(server.kubeconfig, tmp, proc.pid, args))
        finally:
            stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20, help="ConfigMaps of 512 KiB written, listed, deleted")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait before an idle reading")
    parser.add_argument("--returned", type=float, default=45.0, help="seconds after the load of the last reading")
    parser.add_argument("--compare-ref", metavar="REV", help="run git revision REV's `kfab server` first")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        trees = [("this tree", REPO)]
        if args.compare_ref:
            trees.insert(0, (f"baseline {args.compare_ref}", stack.enter_context(worktree(args.compare_ref))))
        results = []
        for label, repo in trees:
            print(f"running {label}; machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                  flush=True)
            t0 = time.monotonic()
            results.append(run(repo, args))
            print(f"  done in {time.monotonic() - t0:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n{'kfab server VmRSS (MB)':48s}" + "".join(f"{label:>20s}" for label, _ in trees))
    for name in results[0]:
        print(f"  {name:46s}" + "".join(f"{r[name]:20.1f}" for r in results))


if __name__ == "__main__":
    main()
