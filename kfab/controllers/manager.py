"""The controller-manager: every controller of CONTROLLERS on one shared set of informers, optionally
leader-elected; also the hook that runs it inside `kfab server` (k3s-style).

CONTROLLERS maps the name used by `--controllers` to the class; add a controller by adding a line here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from kfab.client import Client
from kfab.controllers.base import Controller, ControllerContext
from kfab.controllers.deployment import DeploymentController
from kfab.controllers.endpoints import EndpointsController
from kfab.controllers.endpointslice import EndpointSliceController
from kfab.controllers.events import EventRecorder
from kfab.controllers.garbage_collector import GarbageCollector
from kfab.controllers.informer import InformerFactory
from kfab.controllers.leader import LeaderElectionConfig, LeaderElector
from kfab.controllers.namespace import NamespaceController
from kfab.controllers.node_lifecycle import NodeLifecycleController
from kfab.controllers.pv_binder import PersistentVolumeBinder
from kfab.controllers.replicaset import ReplicaSetController
from kfab.controllers.statefulset import StatefulSetController

log = logging.getLogger(__name__)

CONTROLLERS: dict[str, type[Controller]] = {
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "endpoint": EndpointsController,
    "endpointslice": EndpointSliceController,
    "statefulset": StatefulSetController,
    "nodelifecycle": NodeLifecycleController,
    "persistentvolume-binder": PersistentVolumeBinder,
}


def select(names: Iterable[str] | None) -> dict[str, type[Controller]]:
    """`--controllers` semantics of kube-controller-manager: '*' (all), 'name', '-name' (all but)."""
    names = list(names or ["*"])
    unknown = [n for n in names if n.lstrip("-") not in CONTROLLERS and n != "*"]
    if unknown:
        raise ValueError(f"unknown controllers {unknown}; known: {sorted(CONTROLLERS)}")
    chosen = dict(CONTROLLERS) if "*" in names or all(n.startswith("-") for n in names) else {}
    for n in names:
        if n.startswith("-"):
            chosen.pop(n[1:], None)
        elif n != "*":
            chosen[n] = CONTROLLERS[n]
    return chosen


async def run_controllers(client: Client, names: Iterable[str] | None = None, options: dict | None = None,
                          identity: str | None = None) -> None:
    """Run the chosen controllers until cancelled; Events they record name `identity` as reportingInstance."""
    informers = InformerFactory(client)
    recorder = EventRecorder(client, identity or socket.gethostname())
    ctx = ControllerContext(client, informers, recorder, dict(options or {}))
    controllers = [cls(ctx) for cls in select(names).values()]
    informers.start()
    log.info("controllers running: %s", ", ".join(c.name for c in controllers))
    try:
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        await informers.stop()
        await recorder.close()


async def run_manager(kubeconfig: Path, leader_elect: bool = False, election: LeaderElectionConfig | None = None,
                      names: Iterable[str] | None = None, options: dict | None = None) -> None:
    select(names)  # fail on unknown names before connecting
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-controller-manager", pool_size=100) as client:
        if not leader_elect:
            await run_controllers(client, names, options)
            return
        election = election or LeaderElectionConfig()
        elector = LeaderElector(client, election)
        while True:  # after losing the lease, contend again with fresh caches
            await elector.run(lambda: run_controllers(client, names, options, election.identity))


def in_process_components(args) -> tuple[Callable[[Path], Awaitable[None]], ...]:
    """What `kfab server` runs in its own process once the API serves. Only commands that have the
    --disable-controllers flag (`kfab server`) run any; `kfab apiserver` is the API server alone."""
    if getattr(args, "disable_controllers", True):
        return ()

    async def controller_manager(kubeconfig: Path) -> None:
        try:
            await run_manager(kubeconfig)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the API server keeps serving; the log says what broke
            log.exception("in-process controller-manager stopped")
            raise

    from kfab.scheduler.commands import in_process_scheduler  # the scheduler joins `kfab server` too
    return (controller_manager, in_process_scheduler)
