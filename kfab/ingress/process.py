"""The `kfab ingress` process: shared informers, the router and the status controller, and both listeners,
until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

from kfab.client import Client, KubeconfigError
from kfab.daemon import run_until_signal, setup_logging
from kfab.ingress.certs import default_context
from kfab.ingress.controller import IngressRouter, IngressStatusController, ensure_ingress_class
from kfab.ingress.proxy import IngressProxy, serve
from kfab.machinery.controller import ControllerContext
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import InformerFactory

log = logging.getLogger(__name__)


def run(kubeconfig: str, bind: str, http_port: int, https_port: int, verbose: bool = False) -> int:
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-ingress")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def main() -> int:
        informers = InformerFactory(client)
        recorder = EventRecorder(client, socket.gethostname())
        ctx = ControllerContext(client, informers, recorder)
        router = IngressRouter(ctx)
        status = IngressStatusController(ctx, router)
        tls = default_context()
        tls.sni_callback = router.sni
        proxy = IngressProxy(router.routing)
        await proxy.start()
        informers.start()
        tasks: list[asyncio.Task] = []
        runner = None
        try:
            await informers.wait_synced()
            await ensure_ingress_class(client)
            tasks = [asyncio.create_task(router.run(), name="ingress-router"),
                     asyncio.create_task(status.run(), name="ingress-status")]
            # Listen only once the table is built: an early request would get 404 for a host that exists.
            built = asyncio.create_task(router.synced.wait())
            done, _ = await asyncio.wait([built, *tasks], return_when=asyncio.FIRST_COMPLETED)
            built.cancel()
            for task in done - {built}:
                task.result()   # a part that ended before the table was built: its error
            runner = await serve(proxy, bind, http_port, https_port, tls)
            log.info("serving Ingresses on %s: http %d, https %d", bind, http_port, https_port)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            await proxy.close()
            await informers.stop()
            await recorder.close()
            await client.close()
        return 0

    return run_until_signal(main(), errors=(OSError,))
