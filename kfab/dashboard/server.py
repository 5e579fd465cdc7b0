"""`kfab dashboard`'s web server (aiohttp): the page and its script (plain files, no build step, nothing from
a CDN), and /stream, a Server-Sent Events stream of the cluster view — a snapshot first, then every change.
The browser holds no credentials and asks nothing of the API server: it only listens."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from aiohttp import web

from kfab.dashboard.view import ClusterView

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
KEEPALIVE = 15.0   # seconds between SSE comments, so proxies and the browser see the stream alive
VIEW = web.AppKey("view", ClusterView)
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _static(name: str):
    body = (STATIC / name).read_bytes()
    content_type = CONTENT_TYPES[Path(name).suffix]

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})
    return handler


async def stream(request: web.Request) -> web.StreamResponse:
    view = request.app[VIEW]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = view.subscribe()
    try:
        await _send(response, view.snapshot())
        while queue in view.subscribers:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            batch = [message]
            while not queue.empty():       # a burst (a scale-up) goes out as one write
                batch.append(queue.get_nowait())
            for item in batch:
                await _send(response, item)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        view.unsubscribe(queue)
    return response


async def _send(response: web.StreamResponse, message: dict) -> None:
    await response.write(b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n")


def make_app(view: ClusterView, title: str) -> web.Application:
    app = web.Application()
    app[VIEW] = view
    index = (STATIC / "index.html").read_text().replace("{{title}}", _html_escape(title))

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=index, content_type="text/html", headers={"Cache-Control": "no-cache"})
    app.router.add_get("/", page)
    app.router.add_get("/app.js", _static("app.js"))
    app.router.add_get("/app.css", _static("app.css"))
    app.router.add_get("/stream", stream)
    return app


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


async def serve(view: ClusterView, title: str, host: str, port: int, ready=None) -> None:
    """Serve until cancelled. `ready(url)` is called once the port is bound (port 0: any free port)."""
    await view.start()
    runner = web.AppRunner(make_app(view, title), handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}/"
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await view.stop()
