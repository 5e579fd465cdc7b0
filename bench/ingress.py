"""Ingress, LoadBalancer and NetworkPolicy figures, on loopback (no lab needed).

    .venv/bin/python bench/ingress.py [--seconds 5] [--concurrency 32] [--idle 2000] [--changes 30]

1. Requests/s and p99 latency of keep-alive GETs (--concurrency clients, --seconds each) straight to a
   stand-in pod, through `kfab ingress`, and through Debian's haproxy with the same route (when installed):
   the ratio to the direct figure is the cost of the proxy. Also: --idle idle keep-alive connections held
   open on the ingress, and its RSS with them.
2. Ingress apply -> first 200: from the create call to the first 200 through the ingress, --changes times.
3. NetworkPolicy change -> enforced: a namespace label flipped with a PATCH, until the enforcer's `nft -f`
   (in a throwaway network namespace) has returned with a table that reflects it; p50/p99 of --changes.
The load generator shares the 2 cores with what it measures: the figures are comparable with each other,
not absolute. Everything started here (server, ingress, stand-in pod, haproxy, namespace holder) is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kfab.client import Client, rt_of  # noqa: E402
from kfab.proxy.policy import PolicyEnforcer  # noqa: E402
from tests.api.conftest import start_server, stop_server, user_kubeconfig  # noqa: E402
from tests.netns import NetNS  # noqa: E402

POD_IP = "127.0.0.31"
BACKEND = """
from aiohttp import web
import sys
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None, access_log=None)
"""
HAPROXY_CFG = """
global
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend web
    bind 127.0.0.1:{port}
    use_backend pods if {{ hdr(host) -i bench.example.com }}
backend pods
    http-reuse always
    server pod {pod}:{pod_port}
"""


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def wait_port(ip: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{ip}:{port} does not answer")


async def load(url: str, host: str, seconds: float, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of keep-alive GETs from `concurrency` clients for `seconds`."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end:
                started = time.perf_counter()
                async with session.get(url, headers={"Host": host}) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append(time.perf_counter() - started)
        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    return len(latencies) / elapsed, pct(latencies, 0.5) * 1e3, pct(latencies, 0.99) * 1e3


async def hold_idle(port: int, host: str, count: int) -> list[tuple]:
    """Open `count` keep-alive connections, one request each, and keep them open."""
    conns = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"ok")
        conns.append((reader, writer))
    return conns


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ingress_body(name: str, host: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "pod", "port": {"number": 80}}}}]}}]}}


async def setup_backend(client: Client, pod_port: int) -> None:
    await client.create(rt_of("Namespace"), {"metadata": {"name": "bench"}})
    await client.create(rt_of("Service"), {"metadata": {"name": "pod", "namespace": "bench"}, "spec": {
        "ports": [{"name": "http", "port": 80, "targetPort": pod_port}]}}, "bench")
    await client.create(rt_of("EndpointSlice", "discovery.k8s.io/v1"), {
        "metadata": {"name": "pod", "namespace": "bench", "labels": {"kubernetes.io/service-name": "pod"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": pod_port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [POD_IP], "conditions": {"ready": True}}]}, "bench")


async def apply_to_first_200(client: Client, port: int, changes: int) -> list[float]:
    ing = rt_of("Ingress", "networking.k8s.io/v1")
    times = []
    async with aiohttp.ClientSession() as session:
        for i in range(changes):
            host = f"new-{i}.example.com"
            started = time.monotonic()
            await client.create(ing, ingress_body(f"new-{i}", host), "bench")
            while True:
                async with session.get(f"http://127.0.0.1:{port}/", headers={"Host": host}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.005)
            times.append(time.monotonic() - started)
    return times


async def policy_changes(client: Client, changes: int, nft: list[str]) -> list[float]:
    ns_rt, pod_rt, np_rt = rt_of("Namespace"), rt_of("Pod"), rt_of("NetworkPolicy", "networking.k8s.io/v1")
    for name in ("np-db", "np-web"):
        await client.create(ns_rt, {"metadata": {"name": name}})
    for ns, name, ip in (("np-db", "db", "10.244.1.5"), ("np-web", "web", "10.244.2.5")):
        await client.create(pod_rt, {"metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                                     "spec": {"nodeName": "w1", "schedulerName": "bench-none",
                                              "containers": [{"name": "c", "image": "busybox"}]}}, ns)
        await client.patch(pod_rt, ns, name, {"status": {"podIP": ip, "phase": "Running"}}, subresource="status")
    await client.create(np_rt, {"metadata": {"name": "db", "namespace": "np-db"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}]}}, "np-db")
    enforcer = PolicyEnforcer(client, "w1", nft)
    task = asyncio.create_task(enforcer.run())
    try:
        while enforcer.applied is None:
            await asyncio.sleep(0.01)
        times = []
        for i in range(changes):
            on = i % 2 == 0
            started = time.monotonic()
            await client.patch(ns_rt, None, "np-web", {"metadata": {"labels": {"team": "web" if on else "none"}}})
            while ("10.244.2.5" in (enforcer.applied or "")) != on:
                await asyncio.sleep(0.002)
            times.append(enforcer.applied_at - started)
        return times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--changes", type=int, default=30)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 1000)), hard))
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="kfab-bench-ingress-"))
    server_proc, server = start_server(tmp)
    try:
        pod_port = free_port(POD_IP)
        procs.append(subprocess.Popen([sys.executable, "-c", BACKEND, POD_IP, str(pod_port)]))
        wait_port(POD_IP, pod_port)
        http_port, https_port = free_port(), free_port()
        kubeconfig = user_kubeconfig(tmp, tmp, "system:kfab-ingress")
        ingress = subprocess.Popen([sys.executable, "-m", "kfab", "ingress", "--kubeconfig", str(kubeconfig),
                                    "--bind", "127.0.0.1", "--http-port", str(http_port), "--https-port",
                                    str(https_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        procs.append(ingress)
        wait_port("127.0.0.1", http_port)
        haproxy_port = None
        if shutil.which("haproxy"):
            haproxy_port = free_port()
            cfg = tmp / "haproxy.cfg"
            cfg.write_text(HAPROXY_CFG.format(port=haproxy_port, pod=POD_IP, pod_port=pod_port))
            procs.append(subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_port("127.0.0.1", haproxy_port)

        async def run() -> dict:
            out: dict = {}
            async with Client.from_kubeconfig(server.kubeconfig) as client:
                await setup_backend(client, pod_port)
                await client.create(rt_of("Ingress", "networking.k8s.io/v1"),
                                    ingress_body("bench", "bench.example.com"), "bench")
                deadline = time.monotonic() + 30
                async with aiohttp.ClientSession() as s:
                    while time.monotonic() < deadline:
                        async with s.get(f"http://127.0.0.1:{http_port}/", headers={"Host": "bench.example.com"}) as r:
                            if r.status == 200:
                                break
                        await asyncio.sleep(0.05)
                targets = [("straight to the pod", f"http://{POD_IP}:{pod_port}/"),
                           ("through kfab ingress", f"http://127.0.0.1:{http_port}/")]
                if haproxy_port:
                    targets.append(("through haproxy (Debian)", f"http://127.0.0.1:{haproxy_port}/"))
                for label, url in targets:
                    out[label] = await load(url, "bench.example.com", args.seconds, args.concurrency)
                idle = await hold_idle(http_port, "bench.example.com", args.idle)
                out["idle"] = (len(idle), rss_mib(ingress.pid))
                out["idle_load"] = await load(f"http://127.0.0.1:{http_port}/", "bench.example.com", args.seconds,
                                              args.concurrency)
                for _, writer in idle:
                    writer.close()
                out["apply"] = await apply_to_first_200(client, http_port, args.changes)
                with NetNS() as netns:
                    out["policy"] = await policy_changes(client, args.changes, [*netns.prefix, "nft"])
            return out

        out = asyncio.run(run())
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop_server(server_proc)
        shutil.rmtree(tmp, ignore_errors=True)

    direct = out["straight to the pod"][0]
    print(f"HTTP keep-alive GETs, {args.concurrency} clients x {args.seconds:.0f}s (load generator on the same cores):")
    print(f"  {'':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs direct':>10}")
    for label in [k for k in out if isinstance(out[k], tuple) and len(out[k]) == 3 and k != "idle_load"]:
        rps, p50, p99 = out[label]
        print(f"  {label:28} {rps:8.0f} {p50:8.2f} {p99:8.2f} {rps / direct:9.2f}x")
    count, rss = out["idle"]
    rps, p50, p99 = out["idle_load"]
    print(f"  kfab ingress holding {count} idle keep-alive connections: RSS {rss:.0f} MiB; under load meanwhile "
          f"{rps:.0f} req/s, p99 {p99:.2f} ms")
    apply = out["apply"]
    print(f"Ingress create -> first 200 ({len(apply)}x): p50 {statistics.median(apply) * 1e3:.0f} ms, "
          f"p99 {pct(apply, 0.99) * 1e3:.0f} ms")
    policy = out["policy"]
    print(f"NetworkPolicy change (namespace label) -> nft table applied ({len(policy)}x): "
          f"p50 {statistics.median(policy) * 1e3:.0f} ms, p99 {pct(policy, 0.99) * 1e3:.0f} ms (target <= 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
