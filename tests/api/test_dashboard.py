"""`kfab dashboard` in headless Chromium (Debian's chromium) against a real `kfab server` with hollow nodes: the
page follows a Deployment being created, scaled and rolled out, and a Service's endpoints, only from the
server's pushes (no request after the page loaded but its one event stream), with no credentials in what the
browser gets. The browser is driven over the DevTools protocol (its WebSocket, with aiohttp).

KFAB_DASHBOARD_SCREENSHOT=PATH also saves a screenshot taken during the rollout there (docs/dashboard-rollout.png
was made so)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.api.controllers_cluster import running_cluster, stop
from tests.api.conftest import REPO
from tests.waiting import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)")

NS = "dash"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-dashboard")
    yield from running_cluster(data_dir, nodes=2, hollow_args=("--data-dir", str(data_dir)))


def _line_matching(proc: subprocess.Popen, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{''.join(seen)}")


@pytest.fixture(scope="module")
def dashboard(cluster):
    proc = subprocess.Popen([sys.executable, "-m", "kfab", "dashboard", "--kubeconfig", str(cluster.kubeconfig),
                             "--port", "0"], cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        yield _line_matching(proc, r"(http://127\.0\.0\.1:\d+/)", 60).group(1)
    finally:
        stop(proc)


class Browser:
    """Headless Chromium and one page of it, driven over the DevTools protocol."""

    def __init__(self, url: str, profile: Path):
        self.proc = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                                      "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                      "--window-size=1920,1080", url],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     text=True)
        devtools = _line_matching(self.proc, r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)", 60)
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        self.session = self.ws = None
        self.loop.run_until_complete(self._attach(int(devtools.group(2))))

    async def _attach(self, port: int) -> None:
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            page = next(t for t in await resp.json() if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 << 20)

    async def _call(self, method: str, params: dict) -> dict:
        ident = next(self.ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == ident:
                assert "error" not in message, message
                return message["result"]

    def call(self, method: str, **params) -> dict:
        return self.loop.run_until_complete(self._call(method, params))

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        self.call("Emulation.setDeviceMetricsOverride", width=1920, height=1080, deviceScaleFactor=1, mobile=False)
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        async def close():
            await self.ws.close()
            await self.session.close()
        if self.session is not None:
            self.loop.run_until_complete(close())
        self.loop.close()
        stop(self.proc)


@pytest.fixture(scope="module")
def page(dashboard, tmp_path_factory):
    browser = Browser(dashboard, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield browser
    finally:
        browser.close()


WORKLOAD = f"document.querySelector('[data-workload=\"Deployment/{NS}/web\"]')"
PODS_SHOWN = (f"Array.from(document.querySelectorAll('[data-node] .pod[data-pod^=\"{NS}/web-\"]'))"
              ".map(p => [p.closest('[data-node]').dataset.node, p.dataset.phase])")


def workload(page) -> dict | None:
    return page.js(f"{WORKLOAD} && Object.assign({{}}, {WORKLOAD}.dataset)")


def test_the_page_shows_the_nodes_from_the_servers_watch(cluster, page):
    wait_until("both hollow nodes shown Ready", lambda: page.js(
        "Array.from(document.querySelectorAll('[data-node][data-ready=\"true\"]')).map(n => n.dataset.node).sort()"
    ) == sorted(cluster.nodes), 30)
    assert page.js("document.getElementById('connection').textContent") == "live"


def test_the_page_follows_a_deployment_created_scaled_and_rolled_out(cluster, page):
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("-n", NS, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "minReadySeconds": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "busybox:1.36"}]}}}}))
    wait_until("2 web pods Running on nodes", lambda: sorted(p for _, p in page.js(PODS_SHOWN)) == ["Running"] * 2,
               60)
    assert {node for node, _ in page.js(PODS_SHOWN)} <= set(cluster.nodes)

    cluster.kubectl("-n", NS, "scale", "deployment", "web", "--replicas=5")
    wait_until("5 web pods Running, rollout complete", lambda: (workload(page) or {}).get("rollout") == "complete"
               and workload(page)["ready"] == "5" and [p for _, p in page.js(PODS_SHOWN)] == ["Running"] * 5, 60)

    cluster.kubectl("-n", NS, "expose", "deployment", "web", "--port=80")
    wait_until("the Service with its 5 endpoints", lambda: page.js(
        f"document.querySelector('[data-service=\"{NS}/web\"]')?.dataset.endpoints") == "5", 60)

    # The hollow nodes' usage, as the API server's metrics.k8s.io serves it (scraped every 15 s).
    wait_until("CPU and memory use of both nodes", lambda: page.js(
        "document.querySelectorAll('[data-node] .usage').length") == 2, 60)

    # A rollout (new image): the page shows it in progress — part of the replicas on the new template — then
    # complete with every pod updated.
    cluster.kubectl("-n", NS, "set", "image", "deployment/web", "web=busybox:1.37")
    wait_until("the rollout shown in progress", lambda: (workload(page) or {}).get("rollout") == "progressing"
               and 0 < int(workload(page)["updated"]) < 5, 30, interval=0.05)
    shot = page.screenshot()
    assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
    if os.environ.get("KFAB_DASHBOARD_SCREENSHOT"):
        Path(os.environ["KFAB_DASHBOARD_SCREENSHOT"]).write_bytes(shot)
    wait_until("the rollout shown complete", lambda: (workload(page) or {}).get("rollout") == "complete"
               and workload(page)["updated"] == "5", 120)
    assert page.js("document.querySelectorAll('#events .event').length") > 0

    # Everything came over the one event stream (still open, so not among the finished resources): after its
    # style and script the page fetched nothing.
    requests = page.js("performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)")
    assert sorted(requests) == ["/app.css", "/app.js"], requests


def test_the_browser_gets_no_credentials(cluster, dashboard):
    async def first_message() -> str:
        async with aiohttp.ClientSession() as session, session.get(dashboard + "stream") as resp:
            return (await resp.content.readuntil(b"\n\n")).decode()
    snapshot = asyncio.run(first_message())
    assert snapshot.startswith("data: {\"op\":\"snapshot\"")
    kubeconfig = cluster.kubeconfig.read_text()
    secrets = re.findall(r"(?:client-key-data|client-certificate-data|token): (\S+)", kubeconfig)
    assert secrets and not any(s[:40] in snapshot for s in secrets)
    assert "PRIVATE KEY" not in snapshot
