"""Container logs: the agent's HTTPS endpoint (the kubelet's /containerLogs); the API server's proxy to it is
kfab.api.kubelet_proxy.

The agent serves `GET /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&previous` on port 10250
with a serving certificate from the cluster CA, and only to clients whose certificate the cluster CA signed
(the API server holds one: CN kube-apiserver-kubelet-client, O system:masters). The API server's
`pods/{name}/log` finds the Node's InternalIP and kubelet port in its status and relays the stream.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from pathlib import Path
from typing import AsyncIterator, Callable

from aiohttp import web

from kfab.node import podstatus as ps
from kfab.node.exec import serve_exec
from kfab.node.portforward import serve_port_forward
from kfab.node.resource_metrics import ResourceSampler
from kfab.node.runtime import PodmanRuntime
from kfab.objects.kubelet import KUBELET_PORT
from kfab.objects.resource_metrics import render

log = logging.getLogger(__name__)

# (namespace, pod name) -> the pod's uid on this node, or None
PodUID = Callable[[str, str], "str | None"]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


async def _stream_thread(iterator_factory: Callable[[], object]) -> AsyncIterator[bytes]:
    """Relay a blocking iterator (the bindings' log stream) from a thread into async chunks."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(256)
    done = object()
    cancelled = False

    def pump():
        try:
            for chunk in iterator_factory():
                if cancelled:
                    return
                data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
                if data and not data.endswith(b"\n"):
                    data += b"\n"
                asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
        except Exception as e:  # noqa: BLE001 - the container went away: end the stream
            log.debug("log stream ended: %s", e)
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(done), loop)

    # A daemon thread: a followed log blocks in Podman until the container writes again.
    threading.Thread(target=pump, name="container-logs", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is done:
                break
            yield item
    finally:
        cancelled = True


class LogServer:
    def __init__(self, runtime: PodmanRuntime, pod_uid: PodUID, cert: Path, key: Path, client_ca: Path,
                 bind: str = "0.0.0.0", port: int = KUBELET_PORT):
        self.runtime, self.pod_uid = runtime, pod_uid
        self.sampler = ResourceSampler(runtime)
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.bind, self.port = bind, port
        self._runner: web.AppRunner | None = None

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.load_verify_locations(self.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}",
                           lambda r: serve_exec(r, self.runtime, self.pod_uid))
        app.router.add_get("/attach/{namespace}/{pod}/{container}",
                           lambda r: serve_exec(r, self.runtime, self.pod_uid, attach=True))
        app.router.add_get("/portForward/{namespace}/{pod}",
                           lambda r: serve_port_forward(r, self.runtime, self.pod_uid))
        app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
        app.router.add_get("/metrics/resource", self.resource_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.bind, self.port, ssl_context=self.ssl_context()).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def resource_metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=render(await self.sampler.sample()), content_type="text/plain")

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        uid = self.pod_uid(ns, name)
        if uid is None:
            return _error(404, f'pod "{name}" not found on this node')
        attempts = ps.attempts_by_name(await self.runtime.pod_containers(uid)).get(container)
        if not attempts:
            return _error(400, f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        previous = _true(request.query.get("previous"))
        if previous and len(attempts) < 2:
            return _error(400, f'previous terminated container "{container}" in pod "{name}" not found')
        target = attempts[-2] if previous else attempts[-1]
        follow = _true(request.query.get("follow")) and not previous
        tail = _int(request.query.get("tailLines"))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in _stream_thread(lambda: self.runtime.logs(target["Id"], follow, tail)):
            await response.write(chunk)
        await response.write_eof()
        return response


def _error(code: int, message: str) -> web.Response:
    return web.Response(status=code, text=message)
