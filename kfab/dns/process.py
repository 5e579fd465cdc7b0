"""The `kfab dns` process: the built-in DNS server on records watched from the API, optionally registered as
the endpoint of a Service (kube-system/kube-dns), until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from kfab.client import Client, KubeconfigError
from kfab.daemon import run_until_signal, setup_logging
from kfab.dns.register import register, unregister
from kfab.dns.server import DNSServer
from kfab.dns.watch import WatchedRecords

log = logging.getLogger("kfab.dns")


def run(kubeconfig: str, domain: str, listen: tuple[str, int], upstream: tuple[str, int] | None,
        service: dict | None, verbose: bool = False, listen_text: str = "") -> int:
    """`service`: {service: NAMESPACE/NAME, cluster_ip, endpoint_name} to keep registered while serving;
    `listen_text`: the --listen the user gave, for the message when it cannot be bound."""
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-dns")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def serve() -> int:
        records = WatchedRecords(client, domain)
        server = DNSServer(records, upstream)
        try:
            host, port = await server.start(*listen)
        except OSError as e:
            print(f"ERROR: --listen {listen_text or '%s:%d' % listen}: {e.strerror or e}", file=sys.stderr)
            await client.close()
            return 1
        log.info("serving %s on %s:%d (UDP, TCP); upstream %s", domain, host, port,
                 "%s:%d" % upstream if upstream else "none")
        registration = asyncio.create_task(_register(client, service, host, port)) if service else None
        try:
            await records.run()
        finally:
            if registration is not None:
                await _unregister(client, registration)
            await server.stop()
            await client.close()
        return 0

    return run_until_signal(serve())


async def _register(client, service: dict, host: str, port: int) -> dict:
    """Until it succeeds (the API server may come up after us at boot): the Service and our slice."""
    delay = 1.0
    while True:
        try:
            return await register(client, service["service"], service["cluster_ip"], service["endpoint_name"],
                                  host, port)
        except Exception as e:  # noqa: BLE001 - keep serving; retry with backoff
            log.warning("registering in Service %s: %s (retrying)", service["service"], e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _unregister(client, registration: asyncio.Task) -> None:
    """On a clean stop our slice goes, so the proxies stop sending queries here."""
    if not registration.done():
        registration.cancel()
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(unregister(client, registration.result()), 5)


