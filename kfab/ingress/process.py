"""The `kfab ingress` process: the controller and both listeners until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import sys

from kfab.client import Client, KubeconfigError
from kfab.daemon import run_until_signal, setup_logging
from kfab.ingress.certs import default_context
from kfab.ingress.controller import IngressController
from kfab.ingress.proxy import IngressProxy, serve

log = logging.getLogger(__name__)


def run(kubeconfig: str, bind: str, http_port: int, https_port: int, verbose: bool = False) -> int:
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-ingress")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def main() -> int:
        tls = default_context()
        controller = IngressController(client, tls)
        tls.sni_callback = controller.sni
        proxy = IngressProxy(controller.routing)
        await proxy.start()
        ready = asyncio.Event()
        task = asyncio.create_task(controller.run(ready), name="ingress-controller")
        runner = None
        try:
            # Listen only once the table is built: an early request would get 404 for a host that exists.
            await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
            runner = await serve(proxy, bind, http_port, https_port, tls)
            log.info("serving Ingresses on %s: http %d, https %d", bind, http_port, https_port)
            await task
        finally:
            task.cancel()
            if runner is not None:
                await runner.cleanup()
            await proxy.close()
            await client.close()
        return 0

    return run_until_signal(main(), errors=(OSError,))
