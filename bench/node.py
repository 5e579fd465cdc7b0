"""Benchmark the node agent: pod startup latency (create -> all containers running, seen through a watch; image
present) for N pods over 2 workers, and container death -> restarted (targets: startup p99 <= 2 s, restart <= 2 s).

Also what the same burst costs without the agent: the worker's CPU per pod start (its cgroup, everything in the
lab host: agent, Podman, conmon, runc, netavark) and the latency of the agent's Podman calls made straight
against each worker's Podman, N/2 at once — the floor the agent cannot go under on these hosts.
--cgroup-manager cgroupfs measures Podman with that cgroup manager (a containers.conf.d drop-in on the workers,
set before any pod exists; Podman cannot remove pods made under the other manager). Its pods, conmon and runc
then run outside the worker's cgroup, at the root of this machine's tree: their CPU is counted and printed apart
("outside them"), else the manager would look cheaper than it is.

Runs on a lab of its own (network kfabnbench, 10.84.0.0/24: two workers) with `kfab server` on this machine
bound to the lab gateway, and takes it down at the end (--keep leaves it).
--at-once 2,4 also runs Podman alone with that many creates at a time on each worker (the agent's concurrency).
    .venv/bin/python bench/node.py [--pods 30] [--restarts 10] [--cgroup-manager systemd|cgroupfs] [--at-once N,M]
                                   [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.client import Client, rt_of  # noqa: E402
from kfab.lab import Lab  # noqa: E402
from tests.lab.conftest import LabHosts  # noqa: E402
from tests.lab.node_cluster import BUSYBOX_IMAGE, NodeCluster, wait_for  # noqa: E402

BENCH_INVENTORY = """\
all:
  vars:
    kfab_lab_network: kfabnbench
    kfab_lab_subnet: 10.84.0.0/24
    ansible_user: root
    ansible_ssh_private_key_file: ~/.local/share/kfab/lab/kfabnbench/id_ed25519
    kfab_known_hosts_file: ~/.local/share/kfab/lab/kfabnbench/known_hosts
    kfab_host_key_checking: accept-new
  children:
    workers:
      hosts:
        kn2: {ansible_host: 10.84.0.12}
        kn3: {ansible_host: 10.84.0.13}
"""
WORKERS = ["kn2", "kn3"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def all_running(pod: dict) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


def pod_manifest(name: str, node: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"bench": "node"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [
                {"name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "command": ["sleep", "3600"]}]}}


async def startup(client: Client, count: int, prefix: str = "bench", one_at_a_time: bool = False) -> list[float]:
    """Create `count` pods (all at once, or each after the previous one runs); their create -> running times."""
    pods = rt_of("Pod")
    listed = await client.list(pods, "default")
    created: dict[str, float] = {}
    started: dict[str, float] = {}
    done = asyncio.Event()

    async def watch():
        async for kind, obj in client.watch(pods, "default", listed["metadata"]["resourceVersion"],
                                            label_selector="bench=node"):
            name = obj["metadata"].get("name")
            if kind in ("ADDED", "MODIFIED") and name in created and name not in started and all_running(obj):
                started[name] = time.monotonic()
                if len(started) == count:
                    done.set()
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    for i in range(count):
        name = f"{prefix}-{i}"
        created[name] = time.monotonic()
        await client.create(pods, pod_manifest(name, WORKERS[i % len(WORKERS)]))
        while one_at_a_time and name not in started:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(done.wait(), 300)
    watcher.cancel()
    return [started[n] - created[n] for n in created]


async def restarts(client: Client, lab: LabHosts, count: int) -> tuple[list[float], list[float]]:
    """(podman-side death -> new attempt started, kill sent -> watch shows it running with restartCount+1)."""
    pods = rt_of("Pod")
    podman_side, observed = [], []
    for i in range(count):
        name = f"bench-{i}"
        node = WORKERS[i % len(WORKERS)]
        listed = await client.list(pods, "default", field_selector=f"metadata.name={name}")
        rv = listed["metadata"]["resourceVersion"]
        container = f"$(podman ps -q --filter label=kfab.io/pod-name={name} --filter label=kfab.io/container=main)"
        sent = time.monotonic()
        await asyncio.to_thread(lab.ssh, node, f"kill -9 $(podman inspect -f '{{{{.State.Pid}}}}' {container})")
        async for _kind, obj in client.watch(pods, "default", rv, field_selector=f"metadata.name={name}"):
            st = ((obj.get("status") or {}).get("containerStatuses") or [{}])[0]
            if st.get("restartCount") == 1 and "running" in (st.get("state") or {}):
                observed.append(time.monotonic() - sent)
                break
        out = (await asyncio.to_thread(
            lab.ssh, node, f"podman inspect -f '{{{{.State.StartedAt}}}} {{{{.State.FinishedAt}}}}' "
                           f"$(podman ps -aq --filter label=kfab.io/pod-name={name} "
                           f"--filter label=kfab.io/container=main)")).stdout.split("\n")
        from kfab.node.podstatus import parse_time
        times = {}
        for line in filter(None, out):
            parts = line.split(" ")
            # Go's default time format: "2026-01-01 10:00:00.123 +0000 UTC 2026-..."
            started = parse_time(f"{parts[0]}T{parts[1]}+00:00")
            finished = parse_time(f"{parts[4]}T{parts[5]}+00:00")
            times[started] = finished
        ordered = sorted(times.items())
        if len(ordered) == 2:
            podman_side.append((ordered[1][0] - ordered[0][1]).total_seconds())
    return podman_side, observed


# The agent's Podman calls for one new pod with one container, as a script run with the worker's kfab venv.
PODMAN_ONLY = """
import concurrent.futures, json, sys, time, podman
count, image, at_once, inspecting = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "inspecting"
c = podman.PodmanClient(base_url="unix:///run/podman/podman.sock", timeout=300)
burst = time.monotonic()
def one(i):
    t = burst  # a pod waiting for a free slot counts its wait, as a pod created in a burst does
    name = f"floor-{i}"
    if inspecting:  # the bindings' create() calls, each inspecting what it made (the agent before issue 19)
        pod = c.pods.create(name, labels={"kfab-bench": "floor"}, hostname=name, netns={"nsmode": "bridge"},
                            Networks={"podnet": {}})
        infra = pod.attrs["InfraContainerID"]
    else:
        infra = name + "-infra"
        c.api.post("/pods/create", data=json.dumps({"name": name, "infra_name": infra, "labels": {
            "kfab-bench": "floor"}, "hostname": name, "netns": {"nsmode": "bridge"}, "Networks": {"podnet": {}}}
            )).raise_for_status()
    c.api.post(f"/containers/{infra}/start").raise_for_status()
    c.containers.get(infra)
    c.images.exists(image)
    kwargs = dict(name=name + "-main", pod=name, entrypoint=["sleep"], command=["3600"])
    if inspecting:
        ctr = c.containers.create(image, **kwargs).id
    else:
        body = podman.api.prepare_body(c.containers._render_payload({"image": image, **kwargs}))
        ctr = c.api.post("/containers/create", headers={"content-type": "application/json"}, data=body).json()["Id"]
    c.api.post(f"/containers/{ctr}/start").raise_for_status()
    return time.monotonic() - t
with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
    print(json.dumps(list(pool.map(one, range(count)))))
"""
FLOOR_CLEANUP = "podman pod rm -f -t 0 $(podman pod ps -q --filter label=kfab-bench=floor) >/dev/null 2>&1; true"


def host_cpu_seconds(host: str) -> float | None:
    """CPU time used so far by everything in one lab host (its container's cgroup, v1 or v2)."""
    proc = subprocess.run(["podman", "inspect", "-f", "{{.State.CgroupPath}}", host], capture_output=True, text=True)
    path = proc.stdout.strip()
    for usage, scale in ((f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage", 1e-9),
                         (f"/sys/fs/cgroup{path}/cpu.stat", 1e-6)):
        try:
            text = Path(usage).read_text()
        except OSError:
            continue
        if usage.endswith("cpu.stat"):
            text = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
        return int(text) * scale
    return None


def outside_cpu_seconds() -> dict[str, float]:
    """CPU time (by cgroup) of what a lab host's Podman runs outside the host's own cgroup (cgroup v1).

    A lab host shares this machine's cgroup tree (--cgroupns=host), so a Podman inside it with the cgroupfs
    manager puts its pods in /libpod_parent/<pod id> and their conmon (and the runc that conmon runs) in
    /libpod_parent/conmon, at the tree's root beside the lab hosts (libpod-<id>) rather than inside the
    worker's cgroup: counting only the worker's cgroup would miss that CPU. This machine's own conmons share
    /libpod_parent/conmon (idle but for other labs starting hosts). Pods removed meanwhile take their CPU with
    them: a burst that also removes its pods is undercounted."""
    proc = subprocess.run(["podman", "inspect", "-f", "{{.State.CgroupPath}}", WORKERS[0]], capture_output=True,
                          text=True)
    if not proc.stdout.startswith("/"):
        return {}
    parent = Path("/sys/fs/cgroup/cpuacct") / Path(proc.stdout.strip()).parent.relative_to("/")
    usage = {}
    for child in parent.glob("*/cpuacct.usage"):
        if not child.parent.name.startswith("libpod-"):
            try:
                usage[child.parent.name] = int(child.read_text()) * 1e-9
            except (OSError, ValueError):
                continue
    return usage


def cpu_per_pod(before: dict, after: dict, pods: int) -> str:
    used = [after[h] - before[h] for h in WORKERS if before.get(h) is not None and after.get(h) is not None]
    if not used:
        return "n/a (no cgroup accounting found)"
    text = f"{sum(used) / pods:.3f}s in the workers' cgroups"
    outside = sum(after["outside"][c] - before["outside"].get(c, 0.0) for c in after["outside"])
    if outside > 0.001 * pods:
        text += f" + {outside / pods:.3f}s outside them (cgroupfs: pods and conmon/runc at the cgroup root)"
    return text


def cpu_now() -> dict:
    return {**{h: host_cpu_seconds(h) for h in WORKERS}, "outside": outside_cpu_seconds()}


async def podman_only(lab: LabHosts, pods: int, at_once: int | None = None, inspecting: bool = False
                      ) -> list[float]:
    """The agent's Podman calls for `pods` new pods, half on each worker, `at_once` of them at a time on each
    (default: all), straight to Podman; each pod's time from its burst's start (as create -> running)."""
    async def on(host: str) -> list[float]:
        per_host = pods // len(WORKERS)
        proc = await asyncio.to_thread(
            subprocess.run, lab.lab.ssh_command(host) + [
                f"/opt/kfab/venv/bin/python - {per_host} {BUSYBOX_IMAGE} {at_once or per_host} "
                f"{'inspecting' if inspecting else 'lean'}; {FLOOR_CLEANUP}"],
            input=PODMAN_ONLY, capture_output=True, text=True, timeout=600)
        return json.loads(proc.stdout.splitlines()[0]) if proc.returncode == 0 and proc.stdout else []
    results = await asyncio.gather(*(on(h) for h in WORKERS))
    return [t for r in results for t in r]


def set_cgroup_manager(lab: LabHosts, manager: str) -> None:
    for host in WORKERS:
        lab.ssh(host, "mkdir -p /etc/containers/containers.conf.d && printf '[engine]\\ncgroup_manager = \"%s\"\\n' "
                      f"{manager} > /etc/containers/containers.conf.d/90-kfab-bench.conf && "
                      "systemctl stop podman.service && systemctl restart kfab-node")
        # The restarted agent must be registered again, or the first pods' latency would include its start.
        wait_for(f"kfab node on {host} registered again", lambda host=host: "registered" in lab.ssh(
            host, "journalctl -u kfab-node -n 20 --no-pager -o cat --since=-30s", check=False).stdout.split(
            "Started kfab-node")[-1], timeout=60)


def report(what: str, values: list[float]) -> None:
    if not values:
        print(f"{what}: no samples", flush=True)
        return
    print(f"{what}: n={len(values)} p50={statistics.median(values):.3f}s p99={percentile(values, 99):.3f}s "
          f"max={max(values):.3f}s", flush=True)


async def measure(cluster: NodeCluster, pods: int, restart_count: int, at_once: list[int]) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig) as client:
        before = cpu_now()
        report(f"pod startup, all created at once ({pods} pods over {len(WORKERS)} workers)",
               await startup(client, pods))
        after = cpu_now()
        print(f"worker CPU per pod start (agent + Podman + conmon/runc/netavark): "
              f"{cpu_per_pod(before, after, pods)}", flush=True)
        before = cpu_now()
        report(f"Podman alone, the agent's calls ({pods} pods, {pods // len(WORKERS)} at once on each worker)",
               await podman_only(cluster.lab, pods))
        after = cpu_now()
        print(f"worker CPU per pod start and removal, Podman alone: {cpu_per_pod(before, after, pods)}", flush=True)
        before = cpu_now()
        report("Podman alone, each create inspected after (the agent's calls before issue 19)",
               await podman_only(cluster.lab, pods, inspecting=True))
        print(f"worker CPU per pod start and removal, creates inspected: {cpu_per_pod(before, cpu_now(), pods)}",
              flush=True)
        for n in at_once:
            before = cpu_now()
            report(f"Podman alone, {n} at a time on each worker", await podman_only(cluster.lab, pods, n))
            print(f"worker CPU per pod start and removal, {n} at a time: {cpu_per_pod(before, cpu_now(), pods)}",
                  flush=True)
        report(f"pod startup, one at a time (create -> all containers running, {pods} pods over "
               f"{len(WORKERS)} workers)", await startup(client, pods, "single", one_at_a_time=True))
        podman_side, observed = await restarts(client, cluster.lab, min(restart_count, pods))
        report("container death -> restarted (Podman's clock)", podman_side)
        report("kill sent -> running again, seen through the API", observed)
        await client.delete_collection(rt_of("Pod"), "default", label_selector="bench=node")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="leave the lab and server running")
    parser.add_argument("--at-once", default="", help="also Podman alone with this many creates at a time per "
                                                       "worker, comma-separated (e.g. 2,4)")
    parser.add_argument("--cgroup-manager", choices=["systemd", "cgroupfs"], default=None,
                        help="Podman's cgroup manager on the workers (default: as installed, systemd)")
    args = parser.parse_args()
    bench_dir = Path(tempfile.mkdtemp(prefix="kfab-node-bench-"))
    inventory = bench_dir / "lab.yml"
    inventory.write_text(BENCH_INVENTORY)
    lab = Lab(inventory)
    lab.up()
    cluster = None
    try:
        t = time.monotonic()
        cluster = NodeCluster(LabHosts(lab), WORKERS).start()
        print(f"cluster up in {time.monotonic() - t:.1f}s (server {cluster.server_url})", flush=True)
        if args.cgroup_manager:
            set_cgroup_manager(cluster.lab, args.cgroup_manager)
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        asyncio.run(measure(cluster, args.pods, args.restarts, [int(n) for n in args.at_once.split(",") if n]))
    finally:
        if not args.keep:
            if cluster is not None:
                cluster.stop()
            lab.down()
            shutil.rmtree(bench_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
