"""The data path: an aiohttp server on :80 and :443 that routes each request by the current table to a pod.

The listeners never restart: a new routing table or certificate replaces a reference the next request reads,
so configuration changes drop no connection. Responses are streamed chunk by chunk (server-sent events,
long downloads); WebSocket upgrades are relayed message by message to a WebSocket opened to the pod.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Callable

import aiohttp
from aiohttp import web

from kfab.ingress.backends import RoundRobin
from kfab.ingress.routes import Backend, RouteTable

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host"})
WEBSOCKET_HEADERS = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                               "sec-websocket-protocol"})
CONNECT_TIMEOUT = 5.0


class Routing:
    """What the proxy reads per request; the controller replaces `table` and calls `addresses` lazily."""

    def __init__(self, addresses: Callable[[Backend], list[tuple[str, int]]]):
        self.table = RouteTable()
        self.addresses = addresses


def _text(status: int, reason: str) -> web.Response:
    # As ingress-nginx's default backend: a short HTML body with the status line.
    body = f"<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1>" \
           "</center><hr><center>kfab-ingress</center></body></html>\n"
    return web.Response(status=status, text=body, content_type="text/html")


def forwarded_headers(request: web.Request, scheme: str) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    client_ip = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {client_ip}" if prior else client_ip
    headers["X-Real-IP"] = client_ip
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Port"] = str((request.transport.get_extra_info("sockname") or ("", 0))[1]) \
        if request.transport else ""
    headers["Host"] = request.host
    return headers


class IngressProxy:
    def __init__(self, routing: Routing):
        self.routing = routing
        self.balancer = RoundRobin()
        self.session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, enable_cleanup_closed=True),
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        table = self.routing.table
        scheme = "https" if request.secure else "http"
        route, backend = table.match(request.host, request.path)
        if scheme == "http" and table.tls_secret(request.host) is not None:
            # ingress-nginx's ssl-redirect (on by default for hosts with TLS): 308 keeps method and body.
            raise web.HTTPPermanentRedirect(f"https://{request.host.rsplit(':', 1)[0]}{request.raw_path}")
        if backend is None:
            return _text(503 if route is not None else 404,
                         "Service Temporarily Unavailable" if route is not None else "Not Found")
        choices = self.routing.addresses(backend)
        if not choices:
            return _text(503, "Service Temporarily Unavailable")
        ip, port = self.balancer.pick(backend, choices)
        headers = forwarded_headers(request, scheme)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        try:
            if upgrade:
                return await self._websocket(request, f"http://{ip}:{port}{request.raw_path}", headers)
            return await self._forward(request, f"http://{ip}:{port}{request.raw_path}", headers)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            log.info("%s %s -> %s:%s: %s", request.method, request.path, ip, port, e)
            return _text(502, "Bad Gateway")

    async def _forward(self, request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
        assert self.session is not None
        body = request.content.iter_any() if request.body_exists else None
        async with self.session.request(request.method, url, headers=headers, data=body,
                                        allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(self, request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
        assert self.session is not None
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        upstream_headers = {k: v for k, v in headers.items() if k.lower() not in WEBSOCKET_HEADERS}
        async with self.session.ws_connect(url, headers=upstream_headers, protocols=protocols,
                                           autoping=False) as upstream:
            downstream = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (),
                                               autoping=False)
            await downstream.prepare(request)

            async def relay(source, sink) -> None:
                async for msg in source:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(msg.data)
                    elif msg.type == aiohttp.WSMsgType.PING:
                        await sink.ping(msg.data)
                    elif msg.type == aiohttp.WSMsgType.PONG:
                        await sink.pong(msg.data)
                    else:
                        break
                await sink.close()

            tasks = [asyncio.ensure_future(relay(downstream, upstream)),
                     asyncio.ensure_future(relay(upstream, downstream))]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return downstream


async def serve(proxy: IngressProxy, bind: str, http_port: int, https_port: int,
                ssl_context: ssl.SSLContext) -> web.AppRunner:
    """Start both listeners; the caller keeps the runner and calls runner.cleanup() to stop."""
    runner = web.AppRunner(proxy.app(), access_log=None, handle_signals=False, keepalive_timeout=75.0)
    await runner.setup()
    await web.TCPSite(runner, bind, http_port, backlog=1024, reuse_address=True).start()
    await web.TCPSite(runner, bind, https_port, ssl_context=ssl_context, backlog=1024, reuse_address=True).start()
    return runner
