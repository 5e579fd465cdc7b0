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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kfab.node.resource_metrics import ResourceSampler, node_cpu_seconds, node_working_set  # noqa: E402
from kfab.node.runtime import LABEL_CONTAINER, LABEL_NAME, LABEL_NAMESPACE, LABEL_UID, PodmanRuntime  # noqa: E402
from kfab.objects.resource_metrics import render  # noqa: E402


def start_podman(socket: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not socket.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the Podman API service did not start")
        time.sleep(0.1)
    return proc


def run_containers(prefix: str, count: int, image: str) -> list[str]:
    names = []
    for i in range(count):
        name = f"{prefix}-{i}"
        subprocess.run(["podman", "run", "-d", "--name", name, "--label", f"{LABEL_CONTAINER}=main",
                        "--label", f"{LABEL_NAME}={name}", "--label", f"{LABEL_NAMESPACE}=bench",
                        "--label", f"{LABEL_UID}={prefix}-{i}", image, "sleep", "600"],
                       check=True, capture_output=True)
        names.append(name)
    return names


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
        service = start_podman(socket)
        try:
            node = timed(args.samples, lambda: (node_cpu_seconds(), node_working_set()))
            print(f"node-only sample (baseline)         median {statistics.median(node):7.2f} ms")
            runtime = PodmanRuntime(f"unix://{socket}")
            for count in (int(c) for c in args.containers.split(",")):
                if count > len(names):
                    names += run_containers(f"{prefix}-{len(names)}", count - len(names), args.image)
                times, seen, size = asyncio.run(measure(runtime, args.samples))
                per = (statistics.median(times) - statistics.median(node)) / max(1, seen)
                print(f"sample with {seen:3d} containers          median {statistics.median(times):7.2f} ms   "
                      f"p99 {times[-1]:7.2f} ms   {per:5.2f} ms per container   {size} bytes of text")
        finally:
            if names:
                subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True)
            service.terminate()
            service.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
