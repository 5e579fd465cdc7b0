"""`kubectl exec`: the WebSocket remote-command protocol (v5/v4.channel.k8s.io) on the agent (the API
server's relay to it is kfab.api.kubelet_proxy).

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
from typing import Callable

import aiohttp
from aiohttp import web

from kfab.node import podstatus as ps
from kfab.objects.kubelet import REMOTE_COMMAND_PROTOCOLS

log = logging.getLogger(__name__)

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
    ws = web.WebSocketResponse(protocols=REMOTE_COMMAND_PROTOCOLS, max_msg_size=0)
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
