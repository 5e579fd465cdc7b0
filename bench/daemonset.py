"""DaemonSet figures with hollow nodes (issue 12): a `kfab server` (controllers and scheduler in-process) on a fresh
data dir and `kfab hollow-node --count N`, then, each side by side with a Deployment of N replicas as baseline:

    start     time from creating a DaemonSet to a pod available on every node (numberAvailable == N);
              baseline: a Deployment of N replicas to availableReplicas == N
    rollout   time from a new image to the rollout's end (updatedNumberScheduled == numberAvailable == N) with
              --max-unavailable; baseline: the Deployment's rollout with the same maxUnavailable and maxSurge 0

    .venv/bin/python bench/daemonset.py [--nodes 50] [--max-unavailable 10%]

Timings come from watches through kfab.client. Every process started here is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from hollow_cluster import NAMESPACE, ready_nodes, start, start_server, stop  # bench/ is on sys.path

from kfab.client import Client, rt_of

DAEMONSET, DEPLOYMENT = rt_of("DaemonSet", "apps/v1"), rt_of("Deployment", "apps/v1")


def template(app: str, image: str) -> dict:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "agent", "image": image, "resources": {"requests": {"cpu": "1m"}}}]}}


def daemonset(args) -> dict:
    return {"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", "agent:1"),
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": args.max_unavailable, "maxSurge": 0}}}}


def deployment(args) -> dict:
    return {"metadata": {"name": "web"},
            "spec": {"replicas": args.nodes, "selector": {"matchLabels": {"app": "web"}},
                     "template": template("web", "web:1"),
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": args.max_unavailable, "maxSurge": 0}}}}


def ds_done(obj: dict, n: int) -> bool:
    status = obj.get("status") or {}
    return (status.get("observedGeneration") == obj["metadata"].get("generation")
            and status.get("desiredNumberScheduled") == n and status.get("updatedNumberScheduled") == n
            and status.get("numberAvailable") == n)


def deploy_done(obj: dict, n: int) -> bool:
    status = obj.get("status") or {}
    return (status.get("observedGeneration") == obj["metadata"].get("generation")
            and status.get("updatedReplicas") == n and status.get("availableReplicas") == n
            and status.get("replicas") == n)


async def timed(client: Client, rt, ns: str, name: str, change, done) -> float:
    """Seconds from `change()` (a create or patch) to the first watched version of the object that is `done`."""
    t0 = time.perf_counter()
    made = await change()
    if done(made):
        return time.perf_counter() - t0
    async for kind, obj in client.watch(rt, ns, made["metadata"]["resourceVersion"],
                                        field_selector=f"metadata.name={name}"):
        if kind != "BOOKMARK" and done(obj):
            return time.perf_counter() - t0
    raise RuntimeError(f"the watch of {name} ended")


async def start_both(client: Client, ns: str, args) -> dict:
    n = args.nodes
    ds = await timed(client, DAEMONSET, ns, "agent", lambda: client.create(DAEMONSET, daemonset(args), ns),
                     lambda o: ds_done(o, n))
    dep = await timed(client, DEPLOYMENT, ns, "web", lambda: client.create(DEPLOYMENT, deployment(args), ns),
                      lambda o: deploy_done(o, n))
    return {"pods": n, "daemonset_seconds": round(ds, 2), "baseline_deployment_seconds": round(dep, 2)}


async def rollout_both(client: Client, ns: str, args) -> dict:
    n = args.nodes

    def new_image(container: str, image: str) -> dict:
        return {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}

    ds = await timed(client, DAEMONSET, ns, "agent",
                     lambda: client.patch(DAEMONSET, ns, "agent", new_image("agent", "agent:2")),
                     lambda o: ds_done(o, n))
    dep = await timed(client, DEPLOYMENT, ns, "web",
                      lambda: client.patch(DEPLOYMENT, ns, "web", new_image("agent", "web:2")),
                      lambda o: deploy_done(o, n))
    return {"pods": n, "max_unavailable": args.max_unavailable, "daemonset_rollout_seconds": round(ds, 2),
            "baseline_deployment_rollout_seconds": round(dep, 2)}


async def measure(args, kubeconfig: Path) -> dict:
    """Start, then roll out, in one namespace: the rollout rolls what the start created."""
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-bench") as client:
        await ready_nodes(client, args.nodes, 120)
        await client.create(NAMESPACE, {"metadata": {"name": "bench-daemonset"}})
        results = {"start": await start_both(client, "bench-daemonset", args)}
        print(f"start: {json.dumps(results['start'])}", flush=True)
        results["rollout"] = await rollout_both(client, "bench-daemonset", args)
        print(f"rollout: {json.dumps(results['rollout'])}", flush=True)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--max-unavailable", default="10%", help="the rollouts' maxUnavailable (int or percent)")
    args = parser.parse_args()
    if args.max_unavailable.isdigit():
        args.max_unavailable = int(args.max_unavailable)
    with tempfile.TemporaryDirectory(prefix="kfab-bench-ds-") as tmp:
        data_dir = Path(tmp)
        try:
            server, kubeconfig = start_server(data_dir)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        procs = [server]
        try:
            procs.append(start(["hollow-node", "--kubeconfig", str(kubeconfig), "--count", str(args.nodes)],
                               data_dir / "hollow.log"))
            results = asyncio.run(measure(args, kubeconfig))
            print(json.dumps({"nodes": args.nodes, **results}, indent=2))
        finally:
            for proc in reversed(procs):
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
