"""`kubectl port-forward` on the agent: SPDY/3.1 tunnelled over a WebSocket (`SPDY/3.1+portforward.k8s.io`),
the kubelet's port-forward protocol.

kubectl opens two SPDY streams per forwarded connection, both carrying the headers `port` and `requestID`:
one with `streamType: error` (the agent writes a message there if the connection fails, then closes it) and
one with `streamType: data` (the bytes). The agent connects to localhost:port inside the pod's network
namespace, as the kubelet does, so a server bound to 127.0.0.1 in the pod is reachable too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import os
import socket
from typing import Callable

import aiohttp
from aiohttp import web

from kfab.node import podstatus as ps
from kfab.node import spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CLONE_NEWNET = 0x40000000
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's: both streams of one request must arrive within it


def connect_in_netns(pid: int, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to localhost:port in the network namespace of process `pid`.

    setns() switches only the calling thread, and a socket keeps the namespace it was made in: so a thread of
    its own enters the pod's namespace, connects, and is discarded (never reused in the wrong namespace)."""
    def connect() -> socket.socket:
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into the pod's network namespace: "
                                                  f"{os.strerror(ctypes.get_errno())}")
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=timeout)
            finally:
                libc.setns(own, CLONE_NEWNET)
        finally:
            os.close(own)
            os.close(target)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netns") as pool:
        return pool.submit(connect).result()


class _Stream:
    def __init__(self, stream_id: int, headers: dict[str, str]):
        self.id = stream_id
        self.headers = headers
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: the client closed its side


class PortForwardSession:
    """One kubectl port-forward WebSocket: SPDY frames in, forwarded connections out."""

    def __init__(self, ws: web.WebSocketResponse, connect: Callable[[int], "asyncio.Future[socket.socket]"],
                 pod_name: str, uid: str):
        self.ws = ws
        self.connect = connect
        self.pod_name, self.uid = pod_name, uid
        self.codec = spdy.Codec()
        self.streams: dict[int, _Stream] = {}
        self.pending: dict[str, dict[str, _Stream]] = {}  # requestID -> streamType -> stream
        self.tasks: set[asyncio.Task] = set()
        self._send_lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                for frame in self.codec.feed(msg.data):
                    await self._on_frame(frame)
        except spdy.ProtocolError as e:
            log.info("port-forward to %s: %s", self.pod_name, e)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _on_frame(self, frame: spdy.Frame) -> None:
        if frame.type == spdy.SYN_STREAM:
            stream = self.streams[frame.stream_id] = _Stream(frame.stream_id, frame.headers)
            await self.send(self.codec.syn_reply(frame.stream_id))
            if frame.fin:
                stream.incoming.put_nowait(None)
            self._pair(stream)
        elif frame.type == 0:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                if frame.data:
                    stream.incoming.put_nowait(frame.data)
                if frame.fin:
                    stream.incoming.put_nowait(None)
        elif frame.type == spdy.RST_STREAM:
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.incoming.put_nowait(None)
        elif frame.type == spdy.PING:
            await self.send(self.codec.ping(frame.ping_id))
        elif frame.type == spdy.GOAWAY:
            await self.ws.close()

    def _pair(self, stream: _Stream) -> None:
        request_id = stream.headers.get("requestid", "")
        kind = stream.headers.get("streamtype", "")
        if kind not in ("error", "data"):
            asyncio.ensure_future(self.send(self.codec.rst_stream(stream.id, spdy.PROTOCOL_ERROR)))
            return
        pair = self.pending.setdefault(request_id, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self.pending[request_id]
            task = asyncio.create_task(self._forward(pair["error"], pair["data"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _forward(self, error: _Stream, data: _Stream) -> None:
        try:
            port = int(data.headers.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self._fail(error, data, f'invalid port header "{data.headers.get("port", "")}"')
            return
        try:
            sock = await self.connect(port)
        except OSError as e:
            await self._fail(error, data, f"error forwarding port {port} to pod {self.pod_name}, uid {self.uid}: "
                                          f"{e.strerror or e}")
            return
        reader, writer = await asyncio.open_connection(sock=sock)

        async def client_to_pod() -> None:
            while (chunk := await data.incoming.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        upstream = asyncio.create_task(client_to_pod())
        try:
            while chunk := await reader.read(65536):
                await self.send(self.codec.data(data.id, chunk))
        except ConnectionError:
            pass
        finally:
            # The pod closed its side: what kubectl waits for (data FIN), then the empty error stream's FIN.
            upstream.cancel()
            writer.close()
            await self.send(self.codec.data(data.id, b"", fin=True))
            await self.send(self.codec.data(error.id, b"", fin=True))
            self.streams.pop(data.id, None)
            self.streams.pop(error.id, None)

    async def _fail(self, error: _Stream, data: _Stream, message: str) -> None:
        log.info("port-forward: %s", message)
        await self.send(self.codec.data(error.id, message.encode(), fin=True))
        await self.send(self.codec.data(data.id, b"", fin=True))
        self.streams.pop(data.id, None)
        self.streams.pop(error.id, None)


async def serve_port_forward(request: web.Request, runtime, pod_uid: Callable[[str, str], str | None]
                             ) -> web.StreamResponse:
    """Agent side: GET /portForward/{namespace}/{pod} (WebSocket, SPDY/3.1+portforward.k8s.io)."""
    ns, name = request.match_info["namespace"], request.match_info["pod"]
    uid = pod_uid(ns, name)
    running = [c for c in (await runtime.pod_containers(uid) if uid else []) if ps.is_running(c)]
    if not running:
        return web.Response(status=400, text=f"pod {name} has no running container to forward to")
    pid = (running[0].get("State") or {}).get("Pid")  # every container of the pod shares its network namespace
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=0)
    await ws.prepare(request)
    session = PortForwardSession(ws, lambda port: asyncio.to_thread(connect_in_netns, pid, port), name, uid)
    await session.run()
    await ws.close()
    return ws
