"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket) of one running container.

One asyncio task per probe per container attempt, with the kubelet's semantics: initialDelaySeconds, periodSeconds,
timeoutSeconds, successThreshold/failureThreshold; liveness and readiness wait until the startup probe succeeded.
A probe only records its result and wakes the pod's worker: the worker decides (restart, Ready condition).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aiohttp

log = logging.getLogger(__name__)

Exec = Callable[[list[str]], Awaitable[tuple[int, bytes]]]
EXEC_TIMEOUT_FLOOR = 5.0


async def run_probe(probe: dict, pod_ip: str | None, exec_: Exec, container: dict) -> tuple[bool, str]:
    """One probe attempt: (success, message)."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "exec" in probe:
            # `podman exec` itself takes 0.3-1.5 s on a busy host (a new conmon + runc exec per call), so an
            # exec probe gets at least EXEC_TIMEOUT_FLOOR: the probe's timeout measures the command, not Podman.
            code, out = await asyncio.wait_for(exec_(probe["exec"]["command"]), max(timeout, EXEC_TIMEOUT_FLOOR))
            return code == 0, out.decode(errors="replace")[-200:] if code else ""
        if "httpGet" in probe:
            hg = probe["httpGet"]
            port = _port(hg["port"], container)
            host = hg.get("host") or pod_ip
            url = f"{hg.get('scheme', 'HTTP').lower()}://{host}:{port}{hg.get('path', '/')}"
            headers = {h["name"]: h["value"] for h in hg.get("httpHeaders") or []}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
                async with s.get(url, headers=headers, ssl=False, allow_redirects=False) as resp:
                    ok = 200 <= resp.status < 400
                    return ok, "" if ok else f"HTTP probe failed with statuscode: {resp.status}"
        if "tcpSocket" in probe:
            port = _port(probe["tcpSocket"]["port"], container)
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(probe["tcpSocket"].get("host") or pod_ip, port), timeout)
            writer.close()
            return True, ""
        return False, "probe has no handler"
    except (asyncio.TimeoutError, TimeoutError):
        return False, f"probe timed out after {timeout}s"
    except (OSError, aiohttp.ClientError) as e:
        return False, str(e)
    except Exception as e:  # noqa: BLE001 - the container went away under the probe
        return False, str(e)


def _port(port, container: dict) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in container {container['name']}")


class ContainerProbes:
    """The probes of one attempt of one container; read `ready`, `started`, `live` after a wake-up."""

    def __init__(self, container: dict, pod_ip: str | None, exec_: Exec, wake: Callable[[], None]):
        self.container = container
        self.pod_ip = pod_ip
        self.exec = exec_
        self.wake = wake
        self.started = "startupProbe" not in container
        self.ready = "readinessProbe" not in container
        self.live = True
        self.liveness_message = ""
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in self.container:
                self._tasks.append(asyncio.create_task(self._loop(kind, self.container[kind])))

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    async def _loop(self, kind: str, probe: dict) -> None:
        period = probe.get("periodSeconds", 10)
        success_needed = probe.get("successThreshold", 1)
        failure_needed = probe.get("failureThreshold", 3)
        successes = failures = 0
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        while True:
            if kind != "startupProbe" and not self.started:
                await asyncio.sleep(0.2)
                continue
            ok, message = await run_probe(probe, self.pod_ip, self.exec, self.container)
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if kind == "startupProbe":
                if ok and successes >= success_needed:
                    self.started = True
                    self.wake()
                    return
                if failures >= failure_needed:
                    self.live, self.liveness_message = False, f"Startup probe failed: {message}"
                    self.wake()
                    return
            elif kind == "readinessProbe":
                value = self.ready
                if ok and successes >= success_needed:
                    value = True
                elif not ok and failures >= failure_needed:
                    value = False
                if value != self.ready:
                    self.ready = value
                    self.wake()
            elif not ok and failures >= failure_needed:
                self.live, self.liveness_message = False, f"Liveness probe failed: {message}"
                self.wake()
                return
            await asyncio.sleep(period)
