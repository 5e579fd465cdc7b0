"""Scheduler and node-loss figures with hollow nodes (issue 4, second half):

    throughput    pods bound per second: --pods (3000) pending pods on --nodes (100) hollow nodes, then
                  `kfab scheduler` started; rate = pods / (last bind - first bind), and also counted from the
                  scheduler's start (incl. its list + cache sync). Target >= 300 pods/s.
    node-loss     time from stopping one hollow-node process to its Deployment pods Running again on other
                  nodes, with the controller-manager's default settings (grace period 20 s, eviction 10 s)
                  and hollow nodes renewing their Lease every 10 s as a kubelet does. Target <= 30 s.

    .venv/bin/python bench/scheduler.py [--nodes 100] [--pods 3000] [--only throughput|node-loss] [--repeat N]
                                        [--compare-ref GIT-REV]

--compare-ref runs the throughput first with the `kfab` of git revision REV (a worktree in /tmp: its API
server, scheduler and hollow nodes), then with this tree's, and prints both with the machine's load: figures
of one run side by side, since the machine is shared.

Times come from watches through kfab.client, not from logs. Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hollow_cluster import REPO, ready_nodes, start, start_server, stop, wait_until, worktree  # bench/ on sys.path

from kfab.client import Client, rt_of

POD, NODE, DEPLOYMENT = rt_of("Pod"), rt_of("Node"), rt_of("Deployment", "apps/v1")


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU the process used so far (Linux /proc), to show where the time went."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_pods(c: Client, count: int, concurrency: int = 32) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await c.create(POD, {"metadata": {"name": f"p-{i}", "namespace": "default", "labels": {"bench": "1"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox",
                                                          "resources": {"requests": {"cpu": "10m",
                                                                                     "memory": "16Mi"}}}]}})
    await asyncio.gather(*(one(i) for i in range(count)))


async def watch_binds(c: Client, count: int, rv: str, started: asyncio.Event, times: list[float]) -> None:
    """Record the time each pod is first seen with a node (from the watch stream)."""
    seen: set[str] = set()
    started.set()
    while len(seen) < count:
        async for kind, obj in c.watch(POD, "default", rv, label_selector="bench=1"):
            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
            if kind in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                name = obj["metadata"]["name"]
                if name not in seen:
                    seen.add(name)
                    times.append(time.monotonic())
                    if len(seen) >= count:
                        return


async def create_static_nodes(c: Client, count: int) -> None:
    """Node objects with no agent behind them (kube's scheduler_perf setup): pods are bound, never run."""
    from kfab.node.hollow import CAPACITY, node_conditions
    from kfab.machinery.controller import now_rfc3339

    for i in range(count):
        node = await c.create(NODE, {"metadata": {"name": f"static-{i}", "labels": {
            "kubernetes.io/hostname": f"static-{i}"}}})
        node["status"] = {"capacity": dict(CAPACITY), "allocatable": dict(CAPACITY),
                          "conditions": node_conditions(now_rfc3339())}
        await c.update_status(NODE, node)


async def throughput(nodes: int, pods: int, workdir: Path, static: bool = False, repo: Path = REPO) -> dict:
    server, kubeconfig = start_server(workdir, "--disable-controllers", repo=repo)
    procs = [server]
    try:
        async with Client.from_kubeconfig(kubeconfig, pool_size=64) as c:
            await wait_until(lambda: _ok(c), 60, "API up")
            # No controllers here: the default ServiceAccount pods run as (admission requires it) by hand.
            await c.create(rt_of("ServiceAccount"), {"metadata": {"name": "default", "namespace": "default"}})
            named = {"apiserver": server}
            if static:
                await create_static_nodes(c, nodes)
            else:
                named["hollow_nodes"] = start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(nodes)],
                                              workdir / "hollow.log", repo)
                procs.append(named["hollow_nodes"])
            await ready_nodes(c, nodes)
            t = time.monotonic()
            await create_pods(c, pods)
            print(f"  created {pods} pending pods in {time.monotonic() - t:.1f}s", flush=True)
            rv = (await c.request("GET", c.path(POD, "default"), params={"limit": "1", "labelSelector": "bench=1"})
                  )["metadata"]["resourceVersion"]
            times: list[float] = []
            started = asyncio.Event()
            watcher = asyncio.create_task(watch_binds(c, pods, rv, started, times))
            await started.wait()
            cpu_before = {name: cpu_seconds(p) for name, p in named.items()}
            t_start = time.monotonic()
            named["scheduler"] = start(["scheduler", "--kubeconfig", str(kubeconfig)], workdir / "scheduler.log", repo)
            procs.append(named["scheduler"])
            await asyncio.wait_for(watcher, 600)
            cpu = {name: round(cpu_seconds(p) - cpu_before.get(name, 0.0), 1) for name, p in named.items()}
        span = times[-1] - times[0]
        return {"pods": pods, "nodes": nodes, "bind_span_s": round(span, 2),
                "cpu_s": cpu,
                "load_avg_1m": os.getloadavg()[0],
                "pods_per_s": round(pods / span, 1) if span else None,
                "from_scheduler_start_s": round(times[-1] - t_start, 2),
                "pods_per_s_incl_start": round(pods / (times[-1] - t_start), 1)}
    finally:
        for p in reversed(procs):
            stop(p)


async def _ok(c: Client) -> bool:
    try:
        await c.request("GET", c.path(NODE), params={"limit": "1"})
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _running_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        x.get("type") == "Ready" and x.get("status") == "True" for x in status.get("conditions") or [])


async def node_loss(workdir: Path, replicas: int = 30, keep: int = 9) -> dict:
    server, kubeconfig = start_server(workdir)   # controllers and scheduler in-process, default settings
    procs = [server]
    try:
        async with Client.from_kubeconfig(kubeconfig) as c:
            await wait_until(lambda: _ok(c), 60, "API up")
            procs.append(start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(keep),
                                "--name-prefix", "keep-"], workdir / "keep.log"))
            lost_proc = start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", "1",
                               "--name-prefix", "lost-"], workdir / "lost.log")
            procs.append(lost_proc)
            await ready_nodes(c, keep + 1)
            await c.create(DEPLOYMENT, {"metadata": {"name": "web", "namespace": "default"}, "spec": {
                "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})

            async def all_running(exclude: str | None = None):
                pods = (await c.list(POD, "default", label_selector="app=web"))["items"]
                good = [p for p in pods if _running_ready(p) and not p["metadata"].get("deletionTimestamp")
                        and p["spec"].get("nodeName") != exclude]
                return good if len(good) >= replicas else None
            placed = await wait_until(all_running, 120, "all replicas Running")
            on_lost = sum(1 for p in placed if p["spec"]["nodeName"] == "lost-0")
            t0 = time.monotonic()
            stop(lost_proc)
            await wait_until(lambda: all_running("lost-0"), 120, "replacements Running", 0.2)
            return {"replicas": replicas, "pods_on_lost_node": on_lost,
                    "replacement_s": round(time.monotonic() - t0, 1)}
    finally:
        for p in reversed(procs):
            stop(p)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1, help="node-loss runs")
    parser.add_argument("--only", choices=["throughput", "node-loss"])
    parser.add_argument("--compare-ref", metavar="REV",
                        help="also run the throughput with git revision REV's kfab (a worktree in /tmp) first")
    parser.add_argument("--static-nodes", action="store_true",
                        help="throughput against Node objects without agents (scheduler + API alone, no pod status "
                             "writes), as kube's scheduler_perf")
    args = parser.parse_args()
    if args.only in (None, "throughput"):
        with contextlib.ExitStack() as stack:
            trees = [("this tree", REPO)]
            if args.compare_ref:
                trees.insert(0, (f"baseline {args.compare_ref}", stack.enter_context(worktree(args.compare_ref))))
            kind = "static" if args.static_nodes else "hollow"
            for label, repo in trees:
                print(f"scheduler throughput ({args.pods} pods, {args.nodes} {kind} nodes, {label}; load average "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):", flush=True)
                with tempfile.TemporaryDirectory(prefix="kfab-bench-sched-") as d:
                    result = asyncio.run(throughput(args.nodes, args.pods, Path(d), args.static_nodes, repo))
                print(f"  {result}", flush=True)
    if args.only in (None, "node-loss"):
        results = []
        for i in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="kfab-bench-nodeloss-") as d:
                r = asyncio.run(node_loss(Path(d)))
                results.append(r["replacement_s"])
                print(f"node-loss run {i + 1}: {r}", flush=True)
        print(f"node-loss replacement: median {statistics.median(results):.1f}s over {len(results)} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
