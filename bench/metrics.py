"""Resource metrics sampling cost on a node agent (issue 13): the time one `/metrics/resource` sample takes
(node cgroup + one Podman stats call for every running pod container) with N running containers, next to the
node-only sample (the baseline: no Podman call), and the per-container cost that follows.

Runs a private Podman API service on a temporary socket and N `sleep` containers from the local busybox image
labelled as kfab pod containers; everything it starts is removed by name/PID at the end.

    .venv/bin/python bench/metrics.py [--containers 10,30] [--samples 20] [--image localhost/kfab-busybox:1]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kfab.node.resource_metrics import ResourceSampler, node_cpu_seconds, node_working_set  # noqa: E402
from kfab.node.runtime import PodmanRuntime  # noqa: E402
from kfab.objects.resource_metrics import render  # noqa: E402
from tests.podman_service import (remove_containers, run_pod_container, start_podman_service,  # noqa: E402
                                  stop_podman_service)


def timed(samples: int, one) -> list[float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        one()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


async def measure(runtime: PodmanRuntime, samples: int) -> tuple[list[float], int, int]:
    sampler = ResourceSampler(runtime)
    times, text = [], ""
    for _ in range(samples):
        start = time.perf_counter()
        sample = await sampler.sample()
        text = render(sample)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times), len(sample.containers), len(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", default="10,30")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--image", default="localhost/kfab-busybox:1")
    args = parser.parse_args()
    prefix = f"kfab-bench-metrics-{secrets.token_hex(3)}"
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kfab-bench-podman-") as tmp:
        socket = Path(tmp) / "podman.sock"
        service = start_podman_service(socket)
        try:
            node = timed(args.samples, lambda: (node_cpu_seconds(), node_working_set()))
            print(f"node-only sample (baseline)         median {statistics.median(node):7.2f} ms")
            runtime = PodmanRuntime(f"unix://{socket}")
            for count in (int(c) for c in args.containers.split(",")):
                names += [run_pod_container(f"{prefix}-{i}", args.image, "sleep", "600", namespace="bench")
                          for i in range(len(names), count)]
                times, seen, size = asyncio.run(measure(runtime, args.samples))
                per = (statistics.median(times) - statistics.median(node)) / max(1, seen)
                print(f"sample with {seen:3d} containers          median {statistics.median(times):7.2f} ms   "
                      f"p99 {times[-1]:7.2f} ms   {per:5.2f} ms per container   {size} bytes of text")
        finally:
            remove_containers(names)
            stop_podman_service(service)
    return 0


if __name__ == "__main__":
    sys.exit(main())
