"""Control-plane memory (issue 19): `kfab server` RSS (VmRSS of /proc/PID/status) idle, with --nodes Nodes and
--pods Pods stored, right after a load (lists of everything, --large ConfigMaps of 512 KiB written and listed),
and --settle seconds after the load ended (is the memory given back?).

    .venv/bin/python bench/memory.py [--nodes 100] [--pods 1000] [--large 20] [--compare-ref GIT-REV]

--compare-ref runs the same steps on the `kfab server` of an older commit first (a git worktree in /tmp), so
both columns come from one run on the same machine. Goal: <= 120 MB with 1,000 pods and 100 nodes stored,
and memory returned after load. The server is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from api import REPO, ssl_from_kubeconfig, worktree  # bench/ is on sys.path
from tests.api.conftest import stop_server
from tests.store.apiservers import start_apiserver

NS = "bench-memory"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def node(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"hollow-{i:03d}", "labels": {"kubernetes.io/hostname": f"hollow-{i:03d}"}},
            "status": {"capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}}


def pod(i: int, nodes: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:05d}", "namespace": NS, "labels": {"app": f"app-{i % 20}"}},
            "spec": {"nodeName": f"hollow-{i % nodes:03d}",
                     "containers": [{"name": "app", "image": "registry.example/app:1.0",
                                     "env": [{"name": f"VAR_{k}", "value": "x" * 40} for k in range(5)],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def measure(url: str, ctx, pid: int, args) -> dict:
    figures = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=16)) as session:
        async def call(method: str, path: str, body: dict | None = None, ok=(200, 201)):
            async with session.request(method, url + path, json=body) as resp:
                data = await resp.read()
                if resp.status not in ok:
                    raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
                return len(data)

        async def bounded(calls):
            sem = asyncio.Semaphore(16)

            async def one(c):
                async with sem:
                    await c

            await asyncio.gather(*(one(c) for c in calls))

        await asyncio.sleep(args.settle)
        figures["idle"] = rss_mb(pid)
        await call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}}, ok=(201, 409))
        await bounded(call("POST", "/api/v1/nodes", node(i)) for i in range(args.nodes))
        await bounded(call("POST", f"/api/v1/namespaces/{NS}/pods", pod(i, args.nodes)) for i in range(args.pods))
        await asyncio.sleep(args.settle)
        figures[f"{args.nodes} nodes + {args.pods} pods stored"] = rss_mb(pid)
        big = {"blob": "x" * (512 * 1024)}
        await bounded(call("POST", f"/api/v1/namespaces/{NS}/configmaps",
                           {"metadata": {"name": f"large-{i}"}, "data": big}) for i in range(args.large))
        for _ in range(5):
            await asyncio.gather(call("GET", "/api/v1/pods"), call("GET", "/api/v1/nodes"),
                                 call("GET", f"/api/v1/namespaces/{NS}/configmaps"))
        figures["right after load (lists, large ConfigMaps)"] = rss_mb(pid)
        await bounded(call("DELETE", f"/api/v1/namespaces/{NS}/configmaps/large-{i}") for i in range(args.large))
        await asyncio.sleep(args.settle)
        figures[f"{args.settle:g} s after load (large ConfigMaps deleted)"] = rss_mb(pid)
    return figures


def run(repo: Path, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="kfab-bench-memory-") as tmp:
        tmp = Path(tmp)
        proc, server = start_apiserver(tmp / "server", "", command="server", repo=repo)
        try:
            url, ctx = ssl_from_kubeconfig(server.kubeconfig, tmp)
            return asyncio.run(measure(url, ctx, proc.pid, args))
        finally:
            stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20, help="ConfigMaps of 512 KiB written, listed, deleted")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait before an idle reading")
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
