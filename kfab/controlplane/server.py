"""Server(): start the control-plane components a command asks for, in this process, until a signal stops
them. Every function here is what one `kfab` command calls after parsing its arguments."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from pathlib import Path
from typing import Awaitable, Callable

from kfab.api.memory import bound_tls_buffers
from kfab.api.server import ADMIN_KUBECONFIG, Component, ServerConfig, serve
from kfab.client import Client, KubeconfigError
from kfab.controllers import manager
from kfab.daemon import run_until_signal, setup_logging
from kfab.machinery.informer import InformerFactory
from kfab.machinery.leader import LeaderElectionConfig
from kfab.pki import PKIError
from kfab.scheduler import process as scheduler
from kfab.store import BadStoreURL, StoreError

log = logging.getLogger(__name__)

# What a client component that fails to start says: one line, exit code 1.
CLIENT_ERRORS = (KubeconfigError, ValueError, OSError)


def _in_process(name: str, run: Callable[[Path], Awaitable[None]]) -> Component:
    """A component of `kfab server`: it runs beside the API server, on the admin kubeconfig, until cancelled."""

    async def component(kubeconfig: Path) -> None:
        try:
            await run(kubeconfig)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the API server keeps serving; the log says what broke
            log.exception("in-process %s stopped", name)
            raise

    component.__name__ = name
    return component


def _sharing_informers(components: dict[str, Callable[..., Awaitable[None]]]) -> Component:
    """Components of `kfab server` on one set of informers, as client-go's SharedInformerFactory shares them
    within a process: the controllers and the scheduler both read pods, nodes, claims and volumes, and
    with a factory each the process kept two copies of every pod and node and two watches of each kind.
    Each component runs (and fails) on its own; the informers stop when the last one has stopped."""

    async def in_process(kubeconfig: Path) -> None:
        async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-server-informers", pool_size=100) as client:
            informers = InformerFactory(client)
            try:
                await asyncio.gather(*(_in_process(name, functools.partial(run, informers=informers))(kubeconfig)
                                       for name, run in components.items()), return_exceptions=True)
            finally:
                await informers.stop()

    in_process.__name__ = "+".join(components)
    return in_process


def run_server(config: ServerConfig, verbose: bool = False, controllers: bool = True) -> int:
    """`kfab server`: the API server, and (unless `controllers` is off) the controller-manager and the scheduler
    in the same process once it serves, on shared informers."""
    if controllers:
        config.components = (_sharing_informers({"controller-manager": manager.run_manager,
                                                 "scheduler": scheduler.run}),)
    return run_apiserver(config, verbose)


def run_apiserver(config: ServerConfig, verbose: bool = False) -> int:
    """`kfab apiserver` (and the API server of `kfab server`); a failure to start (store, PKI, port, data dir) is
    one line on stderr and exit code 1."""
    setup_logging(verbose)

    def started(url: str) -> None:
        print(f"kfab API server listening on {url} (kubeconfig: {config.data_dir / ADMIN_KUBECONFIG})", flush=True)

    stop = asyncio.Event()
    try:
        return run_until_signal(serve(config, stop, started), stop=stop)
    except StoreError as e:
        # The store's own messages name it; say which store when one does not.
        message = str(e) if config.store_url in str(e) else f"state store {config.store_url}: {e}"
        print(f"kfab: {message}", file=sys.stderr)
        return 1
    except (BadStoreURL, PKIError, OSError, ValueError) as e:
        print(f"kfab: {e}", file=sys.stderr)
        return 1


def run_controller_manager(kubeconfig: Path, election: LeaderElectionConfig | None, names: list[str],
                           options: dict, verbose: bool = False) -> int:
    """`kfab controller-manager`: the controllers as a client of an API server."""
    setup_logging(verbose)
    bound_tls_buffers()  # a watch connection per resource type
    return run_until_signal(manager.run_manager(kubeconfig, election, names, options), errors=CLIENT_ERRORS)


def run_scheduler(kubeconfig: Path, election: LeaderElectionConfig | None, scheduler_name: str,
                  verbose: bool = False) -> int:
    """`kfab scheduler`: the scheduler as a client of an API server."""
    setup_logging(verbose)
    bound_tls_buffers()
    return run_until_signal(scheduler.run(kubeconfig, election, scheduler_name), errors=CLIENT_ERRORS)
