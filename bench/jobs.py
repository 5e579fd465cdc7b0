"""batch/v1 figures with hollow nodes (issue 12): a `kfab server` (controllers and scheduler in-process) on a
fresh data dir and `kfab hollow-node --count N`, whose Job pods run --run-seconds and exit 0, then:

    job-500        time from creating a Job of --completions (500), --parallelism (50) to its Complete
                   condition, side by side with the baseline: the same pods created directly by this script,
                   --parallelism at a time, a new one as soon as one Succeeded (no Job controller), and the
                   floor completions / parallelism * run-seconds
    cronjob-drift  a `* * * * *` CronJob for --minutes: for each run, when its Job was seen (watch) after the
                   scheduled minute it names (batch.kubernetes.io/cronjob-scheduled-timestamp)

    .venv/bin/python bench/jobs.py [--nodes 20] [--completions 500] [--parallelism 50] [--minutes 2] [--only ...]

Timings come from watches through kfab.client. Every process started here is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hollow_cluster import run_measurements, start, start_server, stop  # bench/ is on sys.path

from kfab.client import Client, rt_of

POD = rt_of("Pod")
JOB, CRONJOB = rt_of("Job", "batch/v1"), rt_of("CronJob", "batch/v1")
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def pod_template(app: str, run_seconds: float) -> dict:
    return {"metadata": {"labels": {"app": app}, "annotations": {"kfab.io/hollow-run-seconds": str(run_seconds)}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox",
                                                                "resources": {"requests": {"cpu": "1m"}}}]}}


async def job_500(client: Client, ns: str, args) -> dict:
    job = {"metadata": {"name": "big"}, "spec": {"completions": args.completions, "parallelism": args.parallelism,
                                                 "template": pod_template("big", args.run_seconds)}}
    t0 = time.perf_counter()
    made = await client.create(JOB, job, ns)
    async for kind, obj in client.watch(JOB, ns, made["metadata"]["resourceVersion"]):
        if kind != "BOOKMARK" and any(c.get("type") == "Complete" and c.get("status") == "True"
                                      for c in (obj.get("status") or {}).get("conditions") or []):
            break
    with_controller = time.perf_counter() - t0
    await client.delete(JOB, ns, "big", propagation_policy="Background")
    baseline = await bare_pods(client, ns, args)
    floor = args.completions / args.parallelism * args.run_seconds
    return {"completions": args.completions, "parallelism": args.parallelism, "run_seconds": args.run_seconds,
            "job_seconds_to_complete": round(with_controller, 2),
            "baseline_bare_pods_seconds": round(baseline, 2), "floor_seconds": round(floor, 2),
            "job_completions_per_second": round(args.completions / with_controller, 1)}


async def bare_pods(client: Client, ns: str, args) -> float:
    """The baseline: the same number of pods, at most --parallelism at once, created by this script."""
    template = pod_template("bare", args.run_seconds)
    created = succeeded = 0
    seen: set[str] = set()
    listed = await client.list(POD, ns, label_selector="app=bare")
    t0 = time.perf_counter()

    async def create(n: int) -> None:
        body = {"metadata": {"generateName": "bare-", **template["metadata"]}, "spec": template["spec"]}
        await asyncio.gather(*(client.create(POD, body, ns) for _ in range(n)))

    first = min(args.parallelism, args.completions)
    await create(first)
    created = first
    async for kind, pod in client.watch(POD, ns, listed["metadata"]["resourceVersion"], label_selector="app=bare"):
        name = pod["metadata"]["name"]
        if kind == "BOOKMARK" or name in seen or (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        seen.add(name)
        succeeded += 1
        if succeeded >= args.completions:
            break
        if created < args.completions:
            created += 1
            await create(1)
    elapsed = time.perf_counter() - t0
    await client.delete_collection(POD, ns, label_selector="app=bare")
    return elapsed


async def cronjob_drift(client: Client, ns: str, args) -> dict:
    template = pod_template("tick", args.run_seconds)
    cronjob = {"metadata": {"name": "tick"},
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    made = await client.create(CRONJOB, cronjob, ns)
    drifts: list[float] = []
    deadline = time.time() + args.minutes * 60 + 5
    jobs = await client.list(JOB, ns)

    async def follow() -> None:
        async for kind, job in client.watch(JOB, ns, jobs["metadata"]["resourceVersion"]):
            if kind != "ADDED":
                continue
            seen = time.time()
            scheduled = (job["metadata"].get("annotations") or {}).get(SCHEDULED)
            if scheduled:
                at = datetime.datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
                drifts.append(seen - at)
                print(f"  run {job['metadata']['name']}: seen {seen - at:.3f} s after its scheduled minute",
                      flush=True)
            if len(drifts) >= args.minutes:
                return

    try:
        await asyncio.wait_for(follow(), max(1.0, deadline - time.time()))
    except asyncio.TimeoutError:
        pass
    await client.delete(CRONJOB, ns, made["metadata"]["name"], propagation_policy="Background")
    if not drifts:
        return {"runs": 0}
    return {"runs": len(drifts), "median_drift_seconds": round(statistics.median(drifts), 3),
            "max_drift_seconds": round(max(drifts), 3), "baseline_drift_seconds": 0.0}


MEASUREMENTS = {"job-500": job_500, "cronjob-drift": cronjob_drift}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--completions", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=50)
    parser.add_argument("--run-seconds", type=float, default=1.0, help="how long each hollow Job pod runs")
    parser.add_argument("--minutes", type=int, default=2, help="CronJob runs to measure (one per minute)")
    parser.add_argument("--only", nargs="*", choices=sorted(MEASUREMENTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-jobs-") as tmp:
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
            results = asyncio.run(run_measurements(MEASUREMENTS, args, kubeconfig, args.nodes))
            print(json.dumps({"nodes": args.nodes, **results}, indent=2))
        finally:
            for proc in reversed(procs):
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
