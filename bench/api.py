"""API latency and throughput with 10,000 stored ConfigMaps, on SQLite (`kfab server`) and on etcd
(`kfab apiserver` over a real 3-member etcd cluster on 127.0.0.1).

    .venv/bin/python bench/api.py [--backend sqlite|etcd|both] [--objects 10000] [--rate 100] [--seconds 10]
                                  [--layer api|store] [--compare-ref GIT-REV]

Figures (issue 3): p50/p99 of create/get/list/update at a steady --rate (open loop: each request is
timed from when it was due, so a stall counts against every request behind it), the max sustained
throughput of each (closed loop, --concurrency requests in flight), a full list of every stored object,
and the time from a write until 100 concurrent watchers have all received its event.
`list` at the steady rate lists one namespace of 100 ConfigMaps while all --objects stay stored.
Targets: mutating p99 <= 50 ms at 100 req/s; get p99 <= 20 ms; watch fan-out to 100 watchers <= 200 ms.

--layer store runs the same phases on the Store interface directly (no API server), to tell the store's
share of a figure from the API layer's. The client is aiohttp over TLS with the admin kubeconfig's client
certificate. Everything it starts (the API server, etcd members) it stops by PID, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hollow_cluster import worktree  # noqa: E402  (bench/ is on sys.path)
from tests.api.conftest import stop_server  # noqa: E402
from tests.etcd_cluster import EtcdCluster  # noqa: E402
from tests.store.apiservers import start_apiserver  # noqa: E402
from kfab.store import open_store  # noqa: E402

NS, LIST_NS, WATCH_NS = "bench", "bench-list", "bench-watch"
PAYLOAD = {"config.yaml": "x" * 200}


def ssl_from_kubeconfig(path: Path, tmp: Path) -> tuple[str, ssl.SSLContext]:
    cfg = yaml.safe_load(path.read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    files = {}
    for name, data in (("ca", cluster["certificate-authority-data"]), ("cert", user["client-certificate-data"]),
                       ("key", user["client-key-data"])):
        files[name] = tmp / f"client-{name}.pem"
        files[name].write_bytes(base64.b64decode(data))
    ctx = ssl.create_default_context(cafile=str(files["ca"]))
    ctx.load_cert_chain(str(files["cert"]), str(files["key"]))
    return cluster["server"], ctx


def configmap(name: str, ns: str = NS) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": PAYLOAD}


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU time used so far by these processes (the server side: API server, etcd members)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else float("nan")


class Client:
    def __init__(self, url: str, ctx: ssl.SSLContext):
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0))
        self.objects: dict[str, dict] = {}  # name -> last object we wrote (for updates with its resourceVersion)
        self.counter = 0

    async def request(self, method: str, path: str, body: dict | None = None, ok=(200, 201)) -> dict:
        async with self.session.request(method, self.url + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status not in ok:
                raise RuntimeError(f"{method} {path}: {resp.status} {data.get('message') if data else ''}")
            return data

    def cm_path(self, ns: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")

    async def create(self, ns: str = NS) -> None:
        self.counter += 1
        name = f"cm-{self.counter:06d}"
        self.objects[name] = await self.request("POST", self.cm_path(ns), configmap(name, ns))

    async def get(self) -> None:
        await self.request("GET", self.cm_path(NS, random.choice(self.names)))

    async def list(self) -> None:
        await self.request("GET", self.cm_path(LIST_NS))

    async def update(self) -> None:
        name = self.names[self.update_next % len(self.names)]
        self.update_next += 1
        obj = self.objects[name]
        obj["data"] = {"config.yaml": f"updated {time.time()}"}
        self.objects[name] = await self.request("PUT", self.cm_path(NS, name), obj)

    async def full_list(self) -> int:
        return len((await self.request("GET", self.cm_path(NS)))["items"])

    async def fanout(self, watchers: int, events: int) -> list[float]:
        return await watch_fanout(self, watchers, events)

    async def close(self) -> None:
        await self.session.close()


class StoreClient:
    """The same operations on the Store interface directly: what the API server asks of the store."""

    def __init__(self, store):
        self.store = store
        self.objects: dict[str, int] = {}  # key -> mod_revision of our last write
        self.counter = 0

    def key(self, ns: str, name: str = "") -> str:
        return f"/registry/configmaps/{ns}/{name}"

    async def create(self, ns: str = NS) -> None:
        self.counter += 1
        key = self.key(ns, f"cm-{self.counter:06d}")
        self.objects[key] = (await self.store.create(key, json.dumps(configmap(key, ns)).encode())).mod_revision

    async def get(self) -> None:
        await self.store.get(random.choice(self.names))

    async def list(self) -> None:
        await self.store.list(self.key(LIST_NS))

    async def update(self) -> None:
        key = self.names[self.update_next % len(self.names)]
        self.update_next += 1
        body = json.dumps({"data": {"config.yaml": f"updated {time.time()}"}}).encode()
        self.objects[key] = (await self.store.update(key, body, self.objects[key])).mod_revision

    async def full_list(self) -> int:
        return len((await self.store.list(self.key(NS)))[0])

    async def fanout(self, watchers: int, events: int) -> list[float]:
        key = self.key(WATCH_NS, "fanout")
        kv = await self.store.create(key, b"{}")
        seen: dict[int, int] = {}
        all_seen: dict[int, asyncio.Event] = {}

        async def watcher():
            async for event in self.store.watch(self.key(WATCH_NS), kv.mod_revision):
                rev = event.kv.mod_revision
                seen[rev] = seen.get(rev, 0) + 1
                if seen[rev] == watchers:
                    all_seen.setdefault(rev, asyncio.Event()).set()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        samples = []
        try:
            for i in range(events + 1):  # the first one only proves every watch is running
                t0 = time.perf_counter()
                kv = await self.store.update(key, json.dumps({"i": i}).encode())
                await asyncio.wait_for(all_seen.setdefault(kv.mod_revision, asyncio.Event()).wait(), 30)
                if i:
                    samples.append(time.perf_counter() - t0)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return samples


async def steady(op, rate: float, seconds: float) -> tuple[list[float], int]:
    """Open loop at `rate`/s: latencies measured from each request's due time; and the error count."""
    latencies, errors, tasks = [], 0, []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(due):
        nonlocal errors
        try:
            await op()
            latencies.append(loop.time() - due)
        except Exception:  # noqa: BLE001 - counted and reported
            errors += 1

    for i in range(int(rate * seconds)):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, errors


async def throughput(op, concurrency: int, seconds: float) -> float:
    """Closed loop: `concurrency` requests always in flight; completed requests per second."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    done = 0

    async def worker():
        nonlocal done
        while loop.time() < end:
            await op()
            done += 1

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (loop.time() - start)


async def watch_fanout(client: Client, watchers: int, events: int) -> list[float]:
    """Seconds from the start of a write until every one of `watchers` watch streams has its event."""
    path = client.cm_path(WATCH_NS)
    obj = await client.request("POST", path, configmap("fanout", WATCH_NS))
    rv = obj["metadata"]["resourceVersion"]
    seen: dict[str, int] = {}
    all_seen: dict[str, asyncio.Event] = {}

    async def watcher():
        async with client.session.get(f"{client.url}{path}?watch=true&resourceVersion={rv}",
                                      timeout=aiohttp.ClientTimeout(total=None)) as resp:
            async for line in resp.content:
                event = json.loads(line)
                got = event["object"]["metadata"]["resourceVersion"]
                seen[got] = seen.get(got, 0) + 1
                if seen[got] == watchers:
                    all_seen.setdefault(got, asyncio.Event()).set()

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    samples = []
    try:
        for i in range(events + 1):  # the first one only proves every stream is connected
            t0 = time.perf_counter()
            obj["data"] = {"i": str(i)}
            obj = await client.request("PUT", f"{path}/fanout", obj)
            await asyncio.wait_for(all_seen.setdefault(obj["metadata"]["resourceVersion"], asyncio.Event()).wait(),
                                   30)
            if i:
                samples.append(time.perf_counter() - t0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return samples


async def run_bench(client, args) -> dict:
    """The phases, on an API Client or a StoreClient."""
    results: dict = {}
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(32)

    async def preload():
        async with sem:
            await client.create()

    await asyncio.gather(*(preload() for _ in range(args.objects)))
    results["preload"] = f"{args.objects} creates in {time.perf_counter() - t0:.1f}s"
    for _ in range(100):
        await client.create(LIST_NS)
    client.names = list(client.objects)[:args.objects]
    client.update_next = 0

    ops = {"create": client.create, "get": client.get, "list": client.list, "update": client.update}
    for name, op in ops.items():
        cpu = cpu_seconds(args.server_pids)
        lat, errors = await steady(op, args.rate, args.seconds)
        # Server CPU per request does not depend on what else the machine is doing, unlike latency.
        cost = (cpu_seconds(args.server_pids) - cpu) / max(1, len(lat)) * 1000 if args.server_pids else None
        results[f"{name} @{args.rate:g}/s"] = (f"p50 {pct(lat, .5):6.1f} ms  p99 {pct(lat, .99):6.1f} ms  "
                                               f"max {pct(lat, 1):6.1f} ms  errors {errors}"
                                               + (f"  server CPU {cost:.1f} ms/req" if cost is not None else ""))
    for name, op in ops.items():
        cpu = cpu_seconds(args.server_pids)
        rate = await throughput(op, args.concurrency, args.seconds / 2)
        cost = (cpu_seconds(args.server_pids) - cpu) / max(1.0, rate * args.seconds / 2) * 1000
        results[f"{name} max throughput"] = f"{rate:7.0f} req/s" + (f"  server CPU {cost:.2f} ms/req"
                                                                    if args.server_pids else "")
    full = []
    cpu = cpu_seconds(args.server_pids)
    for _ in range(5):
        t = time.perf_counter()
        stored = await client.full_list()
        full.append(time.perf_counter() - t)
    cost = (cpu_seconds(args.server_pids) - cpu) / 5 * 1000 if args.server_pids else None
    results[f"list all {stored}"] = (f"p50 {pct(full, .5):6.1f} ms  max {pct(full, 1):6.1f} ms"
                                     + (f"  server CPU {cost:.0f} ms/list" if cost is not None else ""))
    fan = await client.fanout(args.watchers, args.fanout_events)
    results[f"watch fan-out to {args.watchers}"] = (f"p50 {pct(fan, .5):6.1f} ms  p99 {pct(fan, .99):6.1f} ms  "
                                                    f"max {pct(fan, 1):6.1f} ms (write + delivery)")
    return results


async def run_api_bench(url: str, ctx: ssl.SSLContext, args) -> dict:
    client = Client(url, ctx)
    try:
        for ns in (NS, LIST_NS, WATCH_NS):
            await client.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, ok=(201, 409))
        return await run_bench(client, args)
    finally:
        await client.close()


async def run_store_bench(url: str, args) -> dict:
    store = await open_store(url)
    try:
        return await run_bench(StoreClient(store), args)
    finally:
        await store.close()


def bench_backend(backend: str, args, repo: Path = REPO) -> dict:
    args.server_pids = []
    with tempfile.TemporaryDirectory(prefix=f"kfab-bench-api-{backend}-") as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        if args.layer == "store":
            url = f"sqlite://{tmp}/state.db" if backend == "sqlite" else stack.enter_context(EtcdCluster()).url
            return asyncio.run(run_store_bench(url, args))
        if backend == "sqlite" and args.sqlite_command == "server":
            proc, server = start_apiserver(tmp / "server", "", command="server", repo=repo)
        elif backend == "sqlite":
            proc, server = start_apiserver(tmp / "server", f"sqlite://{tmp}/state.db", repo=repo)
        else:
            etcd = stack.enter_context(EtcdCluster())
            proc, server = start_apiserver(tmp / "server", etcd.url, repo=repo)
            args.server_pids = [p.pid for p in etcd.procs if p is not None]
        stack.callback(stop_server, proc)
        args.server_pids.append(proc.pid)
        url, ctx = ssl_from_kubeconfig(server.kubeconfig, tmp)
        return asyncio.run(run_api_bench(url, ctx, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "etcd", "both"], default="both")
    parser.add_argument("--layer", choices=["api", "store"], default="api",
                        help="api: through the API server (default); store: the Store interface directly")
    parser.add_argument("--sqlite-command", choices=["server", "apiserver"], default="server",
                        help="SQLite via `kfab server` (API server + in-process controllers, the default) or "
                             "`kfab apiserver --store sqlite:///...` (the API server alone, as the etcd runs)")
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="per steady-rate phase")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight for max throughput")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--fanout-events", type=int, default=20)
    parser.add_argument("--compare-ref", metavar="REV",
                        help="also run the API server of git revision REV (a worktree in /tmp) first, and print "
                             "its figures above this tree's")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        trees = [("this tree", REPO)]
        if args.compare_ref:
            trees.insert(0, (f"baseline {args.compare_ref}", stack.enter_context(worktree(args.compare_ref))))
        for backend in (["sqlite", "etcd"] if args.backend == "both" else [args.backend]):
            via = {"sqlite": f"kfab {args.sqlite_command}", "etcd": "kfab apiserver, 3 etcd members"}[backend]
            for label, repo in trees:
                print(f"== {backend} ({args.layer} layer, {via}, {label}): {args.objects} ConfigMaps stored; "
                      f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
                for name, figure in bench_backend(backend, args, repo).items():
                    print(f"  {name:28s} {figure}", flush=True)
                print(f"  (load average after: {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
