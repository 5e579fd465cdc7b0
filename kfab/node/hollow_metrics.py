"""Resource metrics of hollow nodes (`kfab hollow-node --data-dir`): each hollow node serves the kubelet's
`/metrics/resource` over HTTPS on its own loopback address (127.250.x.y, its InternalIP), with a serving
certificate from the cluster CA in the control plane's data dir, so the API server scrapes it as it scrapes a
real node agent. Nothing runs on a hollow node, so the figures are synthetic and steady:

- a container uses the CPU and memory its pod's annotations `kfab.io/hollow-cpu` and `kfab.io/hollow-memory`
  say (quantities, e.g. `250m`, `64Mi`; default 5m and 16Mi), from the pod's start;
- a node uses its containers' sum plus 100m and 512Mi for itself.

Tests and benchmarks set the annotations to drive `kubectl top` and the HorizontalPodAutoscaler.
"""

from __future__ import annotations

import calendar
import ssl
import tempfile
import time
from pathlib import Path

from aiohttp import web

from kfab.objects.quantity import QuantityError, parse_value
from kfab.objects.resource_metrics import NodeSample, Usage, render
from kfab.pki import write_node_serving_cert
from kfab.objects.meta import spec_of, status_of

CPU_ANNOTATION = "kfab.io/hollow-cpu"
MEMORY_ANNOTATION = "kfab.io/hollow-memory"
DEFAULT_CPU, DEFAULT_MEMORY = "5m", "16Mi"
NODE_CPU, NODE_MEMORY = 0.1, 512 * 2**20


def loopback_address(number: int) -> str:
    return f"127.250.{number // 250}.{number % 250 + 1}"


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    return calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))


def _quantity(value: str | None, default: str) -> float:
    try:
        return float(parse_value(value or default))
    except QuantityError:
        return float(parse_value(default))


def node_sample(pods: list[dict], booted: float, now: float) -> NodeSample:
    """The synthetic sample of one hollow node running `pods` (cumulative CPU from each pod's start)."""
    sample = NodeSample()
    total_cpu, total_memory = NODE_CPU * (now - booted), NODE_MEMORY
    for pod in pods:
        meta, status = pod["metadata"], status_of(pod)
        started = _epoch(status.get("startTime"))
        if status.get("phase") != "Running" or started is None:
            continue
        annotations = meta.get("annotations") or {}
        cores = _quantity(annotations.get(CPU_ANNOTATION), DEFAULT_CPU)
        memory = int(_quantity(annotations.get(MEMORY_ANNOTATION), DEFAULT_MEMORY))
        for c in spec_of(pod).get("containers") or []:
            cpu_seconds = cores * max(0.0, now - started)
            sample.containers[(meta["namespace"], meta["name"], c["name"])] = Usage(cpu_seconds, memory, now)
            total_cpu += cpu_seconds
            total_memory += memory
    sample.node = Usage(total_cpu, total_memory, now)
    return sample


class HollowMetricsServer:
    """One HTTPS listener per hollow node, on the node's loopback address; `pods_of(node)` lists its pods."""

    def __init__(self, data_dir: Path, numbers: dict[str, int], pods_of):
        self.data_dir, self.numbers, self.pods_of = data_dir, numbers, pods_of
        self.ports: dict[str, int] = {}
        self._by_address = {loopback_address(n): name for name, n in numbers.items()}
        self._booted = time.time()
        self._runner: web.AppRunner | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        with tempfile.TemporaryDirectory(prefix="kfab-hollow-pki-") as tmp:
            cert = write_node_serving_cert(self.data_dir, "hollow-nodes", list(self._by_address), Path(tmp))
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, Path(tmp) / "node.key")
            ctx.load_verify_locations(Path(tmp) / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED  # only the cluster CA's clients (the API server) read metrics
        return ctx

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics/resource", self.resource_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        ctx = self._ssl_context()
        for address, name in self._by_address.items():
            site = web.TCPSite(self._runner, address, 0, ssl_context=ctx)
            await site.start()
            self.ports[name] = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no accessor

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def resource_metrics(self, request: web.Request) -> web.Response:
        address = request.transport.get_extra_info("sockname")[0]
        node = self._by_address.get(address)
        if node is None:
            raise web.HTTPNotFound()
        now = int(time.time() * 1000) / 1000  # the text carries milliseconds: no rate error from the rounding
        return web.Response(text=render(node_sample(self.pods_of(node), self._booted, now)),
                            content_type="text/plain")
