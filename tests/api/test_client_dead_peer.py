"""kfab's API client notices a server that vanished (its host died, or the virtual IP moved away) within seconds,
not after the 60 s request timeout or a watch's timeoutSeconds + 30 s. Inside a private network namespace
(`unshare -n`), a small HTTP server answers a GET and streams a watch; then nft drops every packet to and from it,
as when its host loses power: the pooled connection's next GET and the open watch must both fail soon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.api.conftest import REPO

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("nft"), reason="needs unshare, nft")

INSIDE = textwrap.dedent("""
    import asyncio, json, os, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    from aiohttp import web
    from kfab.client import Client, ClientConfig, rt_of
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    PORT = 18443

    async def get(request):
        return web.json_response({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}})

    async def watch(request):
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(json.dumps({"type": "ADDED", "object": {"metadata": {"name": "x"}}}).encode() + b"\\n")
        await asyncio.sleep(3600)

    async def timed(aw):
        start = time.monotonic()
        try:
            await aw
            return {"error": None, "s": round(time.monotonic() - start, 1)}
        except Exception as e:
            return {"error": type(e).__name__, "s": round(time.monotonic() - start, 1)}

    async def main():
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/default/configmaps/x", get)
        app.router.add_get("/api/v1/configmaps", watch)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", PORT).start()
        client = Client(ClientConfig(server=f"http://127.0.0.1:{PORT}", ssl_context=False))
        await client.get(rt_of("ConfigMap"), "default", "x")   # a pooled connection
        events = client.watch(rt_of("ConfigMap"))
        await events.__anext__()
        subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
            "table inet vanish { chain in { type filter hook input priority 0; tcp dport %d drop; "
            "tcp sport %d drop; }; }" % (PORT, PORT)))
        async def drain():
            async for _ in events:
                pass
        results = await asyncio.gather(timed(client.get(rt_of("ConfigMap"), "default", "x")), timed(drain()))
        print(json.dumps({"get": results[0], "watch": results[1]}), flush=True)
        os._exit(0)  # the namespace goes with this process; a clean shutdown would wait for the dropped peer

    asyncio.run(main())
""")


def test_requests_and_watches_to_a_vanished_server_fail_within_seconds():
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", INSIDE, str(REPO)],
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # TCP_USER_TIMEOUT 10 s on the pooled connection, then aiohttp's one retry on a new one (not 60 s + 60 s)
    assert result["get"]["error"] and result["get"]["s"] < 30, result
    assert result["watch"]["error"] and result["watch"]["s"] < 40, result  # keepalive 10 s + 3 x 5 s (not 330 s)
    print(f"vanished server: request failed after {result['get']['s']} s, watch after {result['watch']['s']} s")
