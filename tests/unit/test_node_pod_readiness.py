"""The Ready a node agent reports for a container it has just started: a readiness probe that has not passed
yet means not ready (the kubelet's rule). The site lab's ingress test saw the opposite: pods reported Ready in the
sync that started them, then NotReady once their probes began, then Ready when the probe passed — a Service's
endpoints (and the ingress's 503s) flapped in between."""

from __future__ import annotations

import asyncio

from kfab.node.podstatus import LABEL_ATTEMPT, LABEL_CONTAINER
from kfab.node.pods import PodWorker


class StatusRecorder:
    """The API side of a status write: keeps what the agent patched."""

    def __init__(self) -> None:
        self.written: list[dict] = []

    async def patch(self, rt, namespace, name, body, *args, **kwargs) -> dict:
        self.written.append(body["status"])
        return body


class Context:
    host_ip = "10.0.0.2"

    def __init__(self) -> None:
        self.client = StatusRecorder()


def pod(container: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "traffic", "uid": "0123456789"},
            "spec": {"containers": [container]}, "status": {}}


def running(name: str) -> dict:
    return {"Id": "c1", "Image": "busybox", "Config": {"Labels": {LABEL_CONTAINER: name, LABEL_ATTEMPT: "0"}},
            "State": {"Status": "running", "StartedAt": "2026-12-07T00:52:22Z"}}


def reported(container: dict) -> dict:
    ctx = Context()
    worker = PodWorker(ctx, pod(container))
    worker.pod_ip = "10.244.1.6"
    asyncio.run(worker._report({container["name"]: [running(container["name"])]}, True, False))
    [status] = ctx.client.written
    return status


def ready_of(status: dict) -> tuple[str, bool]:
    condition = next(c["status"] for c in status["conditions"] if c["type"] == "Ready")
    return condition, status["containerStatuses"][0]["ready"]


def test_a_just_started_container_with_a_readiness_probe_is_not_ready_until_the_probe_passes():
    probe = {"exec": {"command": ["cat", "/www/ready"]}, "periodSeconds": 3}
    status = reported({"name": "httpd", "image": "busybox", "readinessProbe": probe})
    assert status["phase"] == "Running" and ready_of(status) == ("False", False)


def test_a_just_started_container_without_probes_is_ready():
    assert ready_of(reported({"name": "httpd", "image": "busybox"})) == ("True", True)


def test_a_startup_probe_that_has_not_passed_means_not_started():
    status = reported({"name": "httpd", "image": "busybox", "startupProbe": {"exec": {"command": ["true"]}}})
    assert status["containerStatuses"][0]["started"] is False and ready_of(status) == ("False", False)


def test_a_started_containers_probes_begin_with_it_not_at_the_next_sync():
    """The probes of a container the sync just started run from then on (the kubelet's prober), so a readiness
    probe can pass within its period instead of after the next resync (10 s)."""
    container = {"name": "httpd", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}

    async def started() -> list[str]:
        worker = PodWorker(Context(), pod(container))
        worker.pod_ip = "10.244.1.6"
        worker._ensure_probes(worker.pod["spec"], {"httpd": [running("httpd")]})
        ids = list(worker.probes)
        for probes in worker.probes.values():
            probes.stop()
        return ids

    assert asyncio.run(started()) == ["c1"]
