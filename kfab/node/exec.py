"""`kubectl exec`: the WebSocket remote-command protocol (v5/v4.channel.k8s.io) on the agent, and the API
server's relay to it.

Each binary WebSocket message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a Status
as JSON when the command ends), 4 terminal resize; v5 adds 255 "close channel" (kubectl half-closes stdin).
The agent runs the command with `podman exec` (the CLI: the bindings cannot stream stdin into an exec session)
and the API server only copies messages between kubectl and the agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import ssl
from typing import Callable

import aiohttp
from aiohttp import web

from kfab.node import podstatus as ps

log = logging.getLogger(__name__)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def exit_status(code: int) -> dict:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command, exit status {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


async def serve_exec(request: web.Request, runtime, pod_uid: Callable[[str, str], str | None],
                     podman: str = "podman", attach: bool = False) -> web.StreamResponse:
    """Agent side: GET /exec/{namespace}/{pod}/{container}?command=..&stdin&stdout&stderr&tty (WebSocket), and
    GET /attach/... (attach=True: the container's own process, `podman attach`, no command)."""
    ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    command = request.query.getall("command", [])
    uid = pod_uid(ns, name)
    attempts = ps.attempts_by_name(await runtime.pod_containers(uid)).get(container) if uid else None
    if not command and not attach:
        return web.Response(status=400, text="you must specify at least one command for the container")
    if not attempts or not ps.is_running(attempts[-1]):
        return web.Response(status=400, text=f'container {container} is not running in pod {name}')
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    await ws.prepare(request)
    tty, stdin = _true(request.query.get("tty")), _true(request.query.get("stdin"))
    if attach:
        # --sig-proxy=false: kubectl detaching (Ctrl-C) ends `podman attach`, never the container.
        argv = [podman, "attach", "--sig-proxy=false", *([] if stdin else ["--no-stdin"]), attempts[-1]["Id"]]
    else:
        argv = [podman, "exec", *(["-i"] if stdin else []), *(["-t"] if tty else []), attempts[-1]["Id"], *command]
    master = None
    if tty:
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                    start_new_session=True)
        os.close(slave)
    else:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE if stdin else
                                                    asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    loop = asyncio.get_running_loop()

    async def pump(reader, channel: int) -> None:
        while True:
            data = await reader.read(32768)
            if not data:
                return
            await ws.send_bytes(bytes([channel]) + data)

    async def pump_pty() -> None:
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, master, 32768)
            except OSError:  # EIO: the command closed the terminal
                return
            if not data:
                return
            await ws.send_bytes(bytes([STDOUT]) + data)

    async def feed() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN:
                if master is not None:
                    os.write(master, data)
                elif proc.stdin is not None:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()

    feeder = asyncio.create_task(feed())
    if attach:
        # kubectl went away: stop attaching (the container runs on).
        feeder.add_done_callback(lambda _t: proc.returncode is None and proc.terminate())
    outputs = [pump_pty()] if tty else [pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR)]
    await asyncio.gather(*outputs)
    code = await proc.wait()
    if master is not None:
        os.close(master)
    await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(code)).encode())
    feeder.cancel()
    await ws.close()
    return ws


class NodeExecProxy:
    """API server side: relay kubectl's WebSocket to the agent's /exec endpoint, message for message."""

    def __init__(self, node_of: Callable, ssl_context: ssl.SSLContext):
        self.node_of = node_of  # async (node name) -> the Node
        self.ssl_context = ssl_context

    async def __call__(self, pod: dict, request: web.Request, action: str = "exec") -> web.StreamResponse:
        """`action`: exec, or attach (the same protocol on the container's own process)."""
        from kfab.api.errors import APIError, bad_request

        if request.headers.get("Upgrade", "").lower() != "websocket":
            # kubectl falls back to SPDY only when the WebSocket upgrade is refused with an upgrade error.
            raise APIError(400, "BadRequest", "only the WebSocket remote-command protocol "
                           "(v5.channel.k8s.io, v4.channel.k8s.io) is supported")
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.query.get("container") or (containers[0] if containers else "")
        if container not in containers:
            raise bad_request(f'container {container} is not valid for pod {pod["metadata"]["name"]}')
        meta = pod["metadata"]
        params = [(k, v) for k, v in request.query.items() if k != "container"]
        return await self.relay(pod, request, f"/{action}/{meta['namespace']}/{meta['name']}/{container}", params,
                                PROTOCOLS, action)

    async def relay(self, pod: dict, request: web.Request, path: str, params: list, protocols: tuple[str, ...],
                    what: str) -> web.StreamResponse:
        """Open the agent's WebSocket at `path` on the pod's node, then copy messages both ways (exec,
        port-forward): the API server never reads the protocol inside."""
        from kfab.api.errors import APIError, bad_request
        from kfab.node.logs import kubelet_endpoint

        address, port = await kubelet_endpoint(self.node_of, pod["spec"]["nodeName"])
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}{path}"
        session = aiohttp.ClientSession()
        try:
            upstream = await session.ws_connect(url, params=params, ssl=self.ssl_context, protocols=protocols,
                                                max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            await session.close()
            raise bad_request(f"{what} on node {pod['spec']['nodeName']}: {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            await session.close()
            raise APIError(500, "InternalError", f"error dialing node {pod['spec']['nodeName']}: {e}") from None
        downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else protocols,
                                           max_msg_size=0)
        await downstream.prepare(request)

        async def copy(src, dst) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        try:
            up = asyncio.create_task(copy(downstream, upstream))
            await copy(upstream, downstream)
            up.cancel()
        finally:
            await upstream.close()
            await session.close()
        return downstream
