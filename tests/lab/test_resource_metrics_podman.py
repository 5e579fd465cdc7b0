"""The node agent's resource metrics read from a real Podman (a private API service on this machine, no lab
hosts): a busy container's CPU rate and every running pod container under its pod's name, as the API server
will scrape them from /metrics/resource."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kfab.node.resource_metrics import ResourceSampler
from kfab.node.runtime import PodmanRuntime
from kfab.objects.resource_metrics import parse, render
from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
from tests.podman_service import remove_containers, run_pod_container, start_podman_service, stop_podman_service


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    if subprocess.run(["podman", "image", "exists", BUSYBOX_IMAGE]).returncode != 0:
        build_busybox_image(tmp_path_factory.mktemp("busybox"))
    with tempfile.TemporaryDirectory(prefix="kfab-test-podman-") as tmp:
        socket = Path(tmp) / "podman.sock"
        service = start_podman_service(socket)
        try:
            yield PodmanRuntime(f"unix://{socket}")
        finally:
            stop_podman_service(service)


def test_a_busy_container_shows_its_cpu_rate_and_an_idle_one_none(podman):
    prefix = f"kfab-test-metrics-{secrets.token_hex(3)}"
    names = []
    try:
        names.append(run_pod_container(f"{prefix}-busy", BUSYBOX_IMAGE, "sh", "-c", "while :; do :; done"))
        names.append(run_pod_container(f"{prefix}-idle", BUSYBOX_IMAGE, "sleep", "600"))
        sampler = ResourceSampler(podman)
        first = parse(render(asyncio.run(sampler.sample())))  # through the text the API server reads
        time.sleep(2)
        second = parse(render(asyncio.run(sampler.sample())))
        busy, idle = ("test", f"{prefix}-busy", "main"), ("test", f"{prefix}-idle", "main")
        assert busy in second.containers and idle in second.containers, sorted(second.containers)

        def cores(key) -> float:
            return ((second.containers[key].cpu_seconds - first.containers[key].cpu_seconds)
                    / (second.containers[key].timestamp - first.containers[key].timestamp))
        # A spinning shell gets whatever share a loaded 2-core machine leaves it; a sleeping one next to nothing.
        assert cores(busy) > 0.01 and cores(idle) < cores(busy) / 5, (cores(busy), cores(idle))
        assert second.containers[idle].memory_bytes > 0
        assert second.node.cpu_seconds > first.node.cpu_seconds and second.node.memory_bytes > 0
    finally:
        remove_containers(names)
