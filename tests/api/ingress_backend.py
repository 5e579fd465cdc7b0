"""A stand-in pod for ingress tests: `python tests/api/ingress_backend.py IP PORT` answers with who it is and
what it was sent (JSON), streams on /stream, echoes WebSocket messages on /ws."""

import asyncio
import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"pod": sys.argv[1], "path": request.path_qs, "method": request.method,
                              "headers": dict(request.headers), "body": body.decode(errors="replace")})


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for i in range(3):
        await response.write(f"data: {i}\n\n".encode())
        await asyncio.sleep(0.3)
    return response


async def ws(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for msg in socket:
        await socket.send_str(f"{sys.argv[1]}:{msg.data}")
    return socket


app = web.Application()
app.router.add_get("/stream", stream)
app.router.add_get("/ws", ws)
app.router.add_route("*", "/{tail:.*}", echo)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None)
