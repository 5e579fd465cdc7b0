"""Node loss -> pods running elsewhere (issue 15), with hollow nodes: a `kfab server` (API only), `kfab
controller-manager` and `kfab scheduler` as processes of their own, two groups of hollow nodes (`keep-`: 2,
`lose-`: 1), a Deployment of 6 pods spread over the three; then the `lose-` process gets SIGKILL (a dead node)
and the clock runs until 6 pods are Running again, none on the lost node.

Side by side, per setting (grace period, unreachable toleration, lease renewal):

    kfab-up      10 s, 3 s, 2.5 s    what `kfab up` installs now (role control-plane's defaults)
    kfab-old     20 s, 10 s, 5 s     kfab before issue 15 (measured 29.5 s on the lab)
    upstream     50 s, 300 s, 10 s   Kubernetes' defaults: quoted from grace + toleration, not run (~6 min)

    .venv/bin/python bench/node_loss.py [--repeat 3] [--only kfab-up kfab-old]

Hollow nodes report a pod Running as soon as it is bound, so this is the control plane's share; a real worker
adds its pod start and readiness probe: the HA lab's test (tests/lab/ha_workers.py) prints every stage from a
real power cut, e.g. NotReady 8.6 s, evicted 11.5 s, scheduled 12.2 s, Running 13.6 s, Ready 13.9 s (load ~13).
Every process started here is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hollow_cluster import ready_nodes, start, start_server, stop, wait_until  # bench/ is on sys.path

from kfab.client import Client, rt_of

POD, DEPLOYMENT = rt_of("Pod"), rt_of("Deployment", "apps/v1")
REPLICAS = 6
SETTINGS = {  # name: (node-monitor-grace-period, default-unreachable-toleration-seconds, lease renewal)
    "kfab-up": (10.0, 3, 2.5),
    "kfab-old": (20.0, 10, 5.0),
}
UPSTREAM = (50.0, 300, 10.0)


def deployment() -> dict:
    return {"metadata": {"name": "web"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}


async def running_by_node(client: Client) -> dict[str, str]:
    pods = (await client.list(POD, "default", label_selector="app=web"))["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


async def one_loss(client: Client, kubeconfig: Path, data: Path, lease: float, run: int) -> float:
    """Start a node to lose, wait until it carries pods, SIGKILL it; seconds until 6 pods run elsewhere."""
    prefix = f"lose{run}-"
    lost = start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", "1", "--name-prefix", prefix,
                  "--lease-interval", str(lease)], data / f"{prefix}.log")
    try:
        await ready_nodes(client, 3, 60)
        # Spread: delete the pods so the scheduler places the 6 again over 3 nodes, some on the new one.
        await client.delete_collection(POD, "default", label_selector="app=web")

        async def spread():
            placed = await running_by_node(client)
            return len(placed) == REPLICAS and f"{prefix}0" in placed.values()
        await wait_until(spread, 60, "6 pods Running, some on the node to lose")
        await asyncio.sleep(lease)  # a renewal just before the loss would flatter the figure: lose mid-interval
        os.kill(lost.pid, signal.SIGKILL)
        t0 = time.monotonic()

        async def elsewhere():
            placed = await running_by_node(client)
            return len(placed) == REPLICAS and f"{prefix}0" not in placed.values()
        await wait_until(elsewhere, 600, "6 pods Running without the lost node", 0.05)
        took = time.monotonic() - t0
        await client.delete(rt_of("Node"), None, f"{prefix}0")
        return took
    finally:
        stop(lost)


async def measure(name: str, grace: float, toleration: int, lease: float, repeat: int) -> list[float]:
    data = Path(tempfile.mkdtemp(prefix=f"kfab-bench-nodeloss-{name}-"))
    procs = []
    try:
        server, kubeconfig = start_server(data, "--disable-controllers",
                                          "--default-unreachable-toleration-seconds", str(toleration))
        procs.append(server)
        procs.append(start(["controller-manager", "--kubeconfig", str(kubeconfig),
                            "--node-monitor-grace-period", str(grace)], data / "controller-manager.log"))
        procs.append(start(["scheduler", "--kubeconfig", str(kubeconfig)], data / "scheduler.log"))
        procs.append(start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", "2", "--name-prefix", "keep-",
                            "--lease-interval", str(lease)], data / "keep.log"))
        async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-bench") as client:
            await ready_nodes(client, 2, 120)
            await client.create(DEPLOYMENT, deployment(), "default")
            return [await one_loss(client, kubeconfig, data, lease, run) for run in range(repeat)]
    finally:
        for proc in reversed(procs):
            stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(SETTINGS))
    args = parser.parse_args()
    results = {}
    for name in args.only or SETTINGS:
        grace, toleration, lease = SETTINGS[name]
        runs = asyncio.run(measure(name, grace, toleration, lease, args.repeat))
        results[name] = {"grace_s": grace, "toleration_s": toleration, "lease_renew_s": lease,
                         "runs_s": [round(r, 1) for r in runs], "median_s": round(statistics.median(runs), 1)}
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    grace, toleration, lease = UPSTREAM
    # Detection takes the grace period minus the part of a renewal interval already gone (half on average).
    results["upstream (computed)"] = {"grace_s": grace, "toleration_s": toleration, "lease_renew_s": lease,
                                      "median_s": round(grace - lease / 2 + toleration, 1)}
    print("\nnode loss -> 6 pods Running elsewhere (hollow nodes; median of runs)")
    for name, r in results.items():
        print(f"  {name:<20} grace {r['grace_s']:>4.0f} s + toleration {r['toleration_s']:>3} s "
              f"(lease every {r['lease_renew_s']} s): {r['median_s']:>6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
