"""Audit log overhead: a real `kfab server` driven at a steady 100 requests/s (GET of a ConfigMap, and a
create every tenth request) without an audit log, at Metadata, at Metadata from a policy file that keeps
every stage (RequestReceived too: two events a request, upstream's default) and at RequestResponse. Prints latency
p50/p99 and the server's CPU seconds per 1000 requests, side by side; then the cost of writing one event
(microseconds, in process), which the end-to-end figures hide on a loaded machine.

Usage: .venv/bin/python bench/audit.py [--rate 100] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402

from kfab.api.audit import AuditLog, Policy, open_log  # noqa: E402
from kfab.api.auth import UserInfo  # noqa: E402
from kfab.pki import ControlPlanePKI  # noqa: E402
from tests.api.conftest import start_server, stop_server  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, pki: ControlPlanePKI, rate: int, seconds: float, prefix: str = "b") -> list[float]:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    ctx.load_cert_chain(str(pki.admin_cert_path), str(pki.admin_key_path))
    latencies: list[float] = []
    base = f"{url}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=50)) as session:
        await session.post(base, json={"metadata": {"name": "bench"}, "data": {"k": "v"}})  # 409 after the first

        async def one(i: int) -> None:
            t = time.perf_counter()
            if i % 10 == 0:
                resp = await session.post(base, json={"metadata": {"name": f"{prefix}-{i}"},
                                                        "data": {"k": "v" * 200}})
            else:
                resp = await session.get(f"{base}/bench")
            await resp.read()
            latencies.append(time.perf_counter() - t)

        tasks, start = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def measure(tmp: Path, runs: dict[str, tuple[str, ...]], rate: int, seconds: float,
            slice_seconds: float = 3.0) -> dict[str, tuple[list[float], float]]:
    """Every configuration's server runs at once; each is driven in turn for slice_seconds (the order rotating
    every round) until each had `seconds`, so the shared machine's load falls on all alike.
    name -> (latencies, server CPU seconds while driven)."""
    procs, servers = [], {}
    try:
        for name, flags in runs.items():
            data_dir = tmp / name.replace(" ", "-").replace(",", "")
            data_dir.mkdir()
            proc, server = start_server(data_dir, "--disable-controllers", *flags)
            procs.append(proc)
            servers[name] = (proc, server, ControlPlanePKI(data_dir / "pki"))
        results: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in runs}
        order = list(runs)
        for r in range(max(1, round(seconds / slice_seconds))):
            for name in order[r % len(order):] + order[:r % len(order)]:
                proc, server, pki = servers[name]
                before = cpu_seconds(proc.pid)
                latencies = asyncio.run(drive(server.url, pki, rate, slice_seconds, prefix=f"r{r}"))
                spent = cpu_seconds(proc.pid) - before
                results[name] = (results[name][0] + latencies, results[name][1] + spent)
        return results
    finally:
        for proc in procs:
            stop_server(proc)


async def event_cost(tmp: Path, level: str, n: int = 3000) -> float:
    log = AuditLog(Policy.everything_at(level), open_log(tmp / f"cost-{level}.log"))
    request = make_mocked_request("GET", "/api/v1/namespaces/default/configmaps/bench", headers={"User-Agent": "b"})
    user = UserInfo("admin", ("system:masters",))
    request["user"] = user
    log.authenticated(request, user)  # the request's level (RequestReceived is omitted by --audit-level)
    response = web.json_response({"kind": "ConfigMap", "metadata": {"name": "bench"}, "data": {"k": "v" * 200}})
    started = time.process_time()  # CPU time: the wall clock counts the other processes of a loaded machine
    for _ in range(n):
        await log._complete(request, 200, response)  # noqa: SLF001
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        every_stage = Path(tmp) / "policy.yaml"
        every_stage.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n")
        runs = {"no audit log": (), "Metadata": ("--audit-level", "Metadata"),
                "Metadata, stages": ("--audit-policy-file", str(every_stage)),
                "RequestResponse": ("--audit-level", "RequestResponse")}
        runs = {name: (("--audit-log-path", str(Path(tmp) / f"{i}.log"), *flags) if flags else ())
                for i, (name, flags) in enumerate(runs.items())}
        results = measure(Path(tmp), runs, args.rate, args.seconds)
    print(f"kfab server at {args.rate} req/s for {args.seconds:.0f} s (90% GET, 10% create), one process per "
          "configuration, driven in turns of 3 s")
    print(f"{'audit':<16} {'p50 ms':>7} {'p99 ms':>7} {'CPU s/1000 req':>15}")
    for name, (lat, cpu) in results.items():
        q = statistics.quantiles(lat, n=100)
        print(f"{name:<16} {q[49] * 1000:>7.2f} {q[98] * 1000:>7.2f} {cpu / len(lat) * 1000:>15.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("Metadata", "RequestResponse"):
            print(f"one {level} event written: {asyncio.run(event_cost(Path(tmp), level)):.0f} us CPU")


if __name__ == "__main__":
    main()
