"""Watch fan-out latency: time from a write until N subscribers of the WatchHub have all seen it.

    .venv/bin/python bench/watch.py [--subscribers 100] [--events 300] [--store URL | --etcd-cluster]

--etcd-cluster starts a real 3-member etcd cluster on 127.0.0.1 (tests/etcd_cluster.py) for the run.

Each event is written only after every subscriber saw the previous one, so the figure is latency, not
throughput. Prints p50/p99/max over the events (target from issue 3: all 100 watchers within 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kfab.api.watchhub import WatchHub
from kfab.store import open_store


async def bench(store_url: str, subscribers: int, events: int) -> list[float]:
    store = await open_store(store_url)
    hub = WatchHub(store)
    await hub.start()
    key = "/registry/configmaps/bench/fanout"
    kv = await store.get(key) or await store.create(key, b"{}")
    seen = {}  # revision -> number of subscribers that have it
    done = {}  # revision -> asyncio.Event set when all have it

    async def subscriber(sub):
        async for event in sub:
            rev = event.kv.mod_revision
            seen[rev] = seen.get(rev, 0) + 1
            if seen[rev] == subscribers and rev in done:
                done[rev].set()

    start = await store.current_revision()
    tasks = [asyncio.create_task(subscriber(hub.subscribe("/registry/configmaps/", start)))
             for _ in range(subscribers)]
    latencies = []
    try:
        for i in range(events):
            t0 = time.perf_counter()
            kv = await store.update(key, json.dumps({"i": i}).encode())
            rev = kv.mod_revision
            done[rev] = asyncio.Event()
            if seen.get(rev, 0) < subscribers:
                await asyncio.wait_for(done[rev].wait(), 30)
            latencies.append(time.perf_counter() - t0)
            del done[rev], seen[rev]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.close()
        await store.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument("--etcd-cluster", action="store_true", help="run on a fresh 3-member etcd cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-watch-") as tmp, contextlib.ExitStack() as stack:
        url = args.store or f"sqlite:///{tmp}/state.db"
        if args.etcd_cluster:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.etcd_cluster import EtcdCluster
            url = stack.enter_context(EtcdCluster()).url
        lat = asyncio.run(bench(url, args.subscribers, args.events))
    ms = sorted(x * 1000 for x in lat)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"watch fan-out to {args.subscribers} subscribers over {len(ms)} events "
          f"({url.split(':', 1)[0]}): write + all-seen latency p50 {statistics.median(ms):.1f} ms, "
          f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms (target <= 200 ms)")


if __name__ == "__main__":
    main()
