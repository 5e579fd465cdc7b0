"""Service proxy figures: EndpointSlice change -> nftables rules updated, and render + apply for 1,000 Services.

    .venv/bin/python bench/proxy.py [--services 1000] [--endpoints 3] [--changes 30]

1. render_ruleset() and `nft -f` of the whole table for --services Services of --endpoints endpoints each.
2. A real `kfab server` (127.0.0.1) and the proxy's loop (in this process, so the moment its apply
   finishes is known exactly) with --services Services + slices stored; each of --changes times, one
   endpoint of one Service flips ready <-> not ready with a PATCH; the figure is from sending the PATCH to
   `nft -f` having returned with a table that reflects it (API write + watch + 50 ms debounce + render +
   apply). Target: <= 1 s.
The nftables table lives in a network namespace of its own (`unshare -n`, entered with nsenter), so this
machine's rules are never touched. Everything started (server, namespace holder) is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.api.conftest import start_server, stop_server  # noqa: E402
from tests.netns import NetNS  # noqa: E402
from kfab.client import Client, rt_of  # noqa: E402
from kfab.proxy.proxier import Proxier, run_nft  # noqa: E402
from kfab.proxy.rules import build_ruleset, render_ruleset, render_update  # noqa: E402

SERVICE, SLICE = rt_of("Service"), rt_of("EndpointSlice", "discovery.k8s.io/v1")


def objects(n: int, endpoints: int) -> tuple[list[dict], list[dict]]:
    services, slices = [], []
    for i in range(n):
        name = f"svc-{i}"
        services.append({"metadata": {"namespace": "bench", "name": name},
                         "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{i // 250 + 1}.{i % 250 + 1}",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        slices.append(slice_body(name, [f"10.244.{(i * endpoints + j) // 250 % 250}.{(i * endpoints + j) % 250 + 1}"
                                        for j in range(endpoints)]))
    return services, slices


def slice_body(service: str, ips: list[str], ready: bool = True) -> dict:
    return {"metadata": {"namespace": "bench", "name": f"{service}-s",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip in ips]}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def render_and_apply(nft: list[str], n: int, endpoints: int) -> None:
    services, slices = objects(n, endpoints)
    renders, applies = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        text = render_ruleset(services, slices, ["10.79.0.11"], cluster_cidr="10.244.0.0/16")
        t1 = time.perf_counter()
        await run_nft(nft, text)
        applies.append(time.perf_counter() - t1)
        renders.append(t1 - t0)
    print(f"render {n} Services x {endpoints} endpoints ({len(text) // 1024} KiB): "
          f"median {statistics.median(renders) * 1e3:.1f} ms")
    print(f"nft -f apply of the whole table: median {statistics.median(applies) * 1e3:.1f} ms, "
          f"max {max(applies) * 1e3:.1f} ms")
    # One Service's endpoints change: build the model again, diff, apply only the change.
    before = build_ruleset(services, slices, ["10.79.0.11"], cluster_cidr="10.244.0.0/16")
    builds, updates = [], []
    for k in range(10):
        changed = [dict(s) for s in slices]
        changed[k * 97 % n] = dict(changed[k * 97 % n], endpoints=changed[k * 97 % n]["endpoints"][1:])
        t0 = time.perf_counter()
        after = build_ruleset(services, changed, ["10.79.0.11"], cluster_cidr="10.244.0.0/16")
        update = render_update(before, after)
        t1 = time.perf_counter()
        await run_nft(nft, update)
        t2 = time.perf_counter()
        await run_nft(nft, render_update(after, before))
        builds.append(t1 - t0)
        updates.append(t2 - t1)
    print(f"one Service changed among {n}: build + diff median {statistics.median(builds) * 1e3:.1f} ms, "
          f"nft -f of the change median {statistics.median(updates) * 1e3:.1f} ms")


async def change_latency(nft: list[str], kubeconfig: Path, n: int, endpoints: int, changes: int) -> None:
    async with Client.from_kubeconfig(kubeconfig) as client:
        await client.create(rt_of("Namespace"), {"metadata": {"name": "bench"}})
        _, bodies = objects(n, endpoints)
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            async with sem:
                await client.create(SERVICE, {"metadata": {"name": f"svc-{i}", "namespace": "bench"},
                                              "spec": {"ports": [{"name": "http", "port": 80}]}})
                await client.create(SLICE, bodies[i])
        t0 = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(n)))
        print(f"created {n} Services + EndpointSlices in {time.perf_counter() - t0:.1f} s")

        proxier = Proxier(client, ["10.79.0.11"], "10.244.0.0/16", nft_command=nft)
        task = asyncio.create_task(proxier.run())
        try:
            while not (proxier.applied and "svc-%d-" % (n - 1) in proxier.applied):
                await asyncio.sleep(0.01)
            latencies = []
            ready_now: dict[int, bool] = {}
            for k in range(changes):
                i = (k * 7919) % n
                ready = not ready_now.get(i, True)      # flip the first endpoint of Service i
                ready_now[i] = ready
                ip = bodies[i]["endpoints"][0]["addresses"][0]
                marker = f"{ip} . 8080" if endpoints > 1 else f"{ip}:8080"
                if (marker in (proxier.applied or "")) == ready:
                    raise AssertionError(f"bench bug: {marker!r} already {'in' if ready else 'out of'} the table")
                sent = time.monotonic()
                await client.patch(SLICE, "bench", f"svc-{i}-s",
                                   [{"op": "replace", "path": "/endpoints/0/conditions/ready", "value": ready}],
                                   patch_type="json")
                while (marker in (proxier.applied or "")) != ready:
                    await asyncio.sleep(0.002)
                latencies.append(proxier.applied_at - sent)
            print(f"EndpointSlice change -> rules applied ({n} Services stored, {changes} changes): "
                  f"p50 {pct(latencies, 0.5) * 1e3:.0f} ms, p90 {pct(latencies, 0.9) * 1e3:.0f} ms, "
                  f"max {max(latencies) * 1e3:.0f} ms (target <= 1000 ms)")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def run_all(args, nft: list[str]) -> None:
    """One event loop for every phase (asyncio's subprocess transports outlive a closed loop badly)."""
    await render_and_apply(nft, args.services, args.endpoints)
    server = None
    try:
        for n in sorted({10, args.services}):
            await run_nft(nft, "table ip kfab {}\ndelete table ip kfab\n")
            if server is not None:
                stop_server(server)
            server, info = start_server(Path(tempfile.mkdtemp(prefix="kfab-bench-proxy-")))
            await change_latency(nft, info.kubeconfig, n, args.endpoints, args.changes)
    finally:
        if server is not None:
            stop_server(server)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--changes", type=int, default=30)
    args = ap.parse_args()
    netns = NetNS().__enter__()
    try:
        asyncio.run(run_all(args, [*netns.prefix, "nft"]))
    finally:
        netns.__exit__()
    return 0


if __name__ == "__main__":
    sys.exit(main())
