"""The controller-manager: every controller of CONTROLLERS on one shared set of informers, optionally
leader-elected (kfab.controlplane runs it, in `kfab server` or as `kfab controller-manager`).

CONTROLLERS maps the name used by `--controllers` to the class; add a controller by adding a line here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Iterable

from kfab.client import Client
from kfab.machinery.controller import Controller, ControllerContext
from kfab.controllers.daemonset import DaemonSetController
from kfab.controllers.deployment import DeploymentController
from kfab.controllers.disruption import DisruptionController
from kfab.controllers.endpoints import EndpointsController
from kfab.controllers.endpointslice import EndpointSliceController
from kfab.machinery.events import EventRecorder
from kfab.controllers.garbage_collector import GarbageCollector
from kfab.controllers.hpa import HorizontalPodAutoscalerController
from kfab.controllers.cronjob import CronJobController
from kfab.controllers.job import JobController
from kfab.machinery.informer import InformerFactory
from kfab.machinery.leader import LeaderElectionConfig, LeaderElector
from kfab.controllers.namespace import NamespaceController
from kfab.controllers.node_lifecycle import NodeLifecycleController
from kfab.controllers.pv_binder import PersistentVolumeBinder
from kfab.controllers.replicaset import ReplicaSetController
from kfab.controllers.resourcequota import ResourceQuotaController
from kfab.controllers.root_ca_publisher import RootCAPublisher
from kfab.controllers.service_lb import ServiceLoadBalancerController
from kfab.controllers.serviceaccounts import ServiceAccountsController
from kfab.controllers.statefulset import StatefulSetController
from kfab.controllers.ttl_after_finished import TTLAfterFinishedController

log = logging.getLogger(__name__)

CONTROLLERS: dict[str, type[Controller]] = {
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "endpoint": EndpointsController,
    "endpointslice": EndpointSliceController,
    "statefulset": StatefulSetController,
    "job": JobController,
    "cronjob": CronJobController,
    "ttl-after-finished": TTLAfterFinishedController,
    "daemonset": DaemonSetController,
    "disruption": DisruptionController,
    "nodelifecycle": NodeLifecycleController,
    "persistentvolume-binder": PersistentVolumeBinder,
    "serviceaccount": ServiceAccountsController,
    "service-lb": ServiceLoadBalancerController,
    "root-ca-cert-publisher": RootCAPublisher,
    "resourcequota": ResourceQuotaController,
    "horizontalpodautoscaling": HorizontalPodAutoscalerController,
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
                          identity: str | None = None, informers: InformerFactory | None = None) -> None:
    """Run the chosen controllers until cancelled; Events they record name `identity` as reportingInstance.

    `informers`: the process's shared informers (in `kfab server` the scheduler reads the same ones), which
    their owner stops; without them the controllers get informers of their own, stopped here."""
    own = informers is None
    if informers is None:
        informers = InformerFactory(client)
    recorder = EventRecorder(client, identity or socket.gethostname())
    ctx = ControllerContext(client, informers, recorder, dict(options or {}))
    controllers = [cls(ctx) for cls in select(names).values()]
    informers.start()
    log.info("controllers running: %s", ", ".join(c.name for c in controllers))
    try:
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        if own:
            await informers.stop()
        await recorder.close()


async def run_manager(kubeconfig: Path, election: LeaderElectionConfig | None = None,
                      names: Iterable[str] | None = None, options: dict | None = None,
                      informers: InformerFactory | None = None) -> None:
    """Until cancelled; with an `election`, only while holding its Lease (and then on informers of its own:
    each term starts from fresh caches). `informers`: see run_controllers."""
    select(names)  # fail on unknown names before connecting
    if election is not None and informers is not None:
        raise ValueError("a leader-elected controller-manager keeps informers of its own")
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-controller-manager", pool_size=100) as client:
        if election is None:
            await run_controllers(client, names, options, informers=informers)
            return
        elector = LeaderElector(client, election)
        while True:  # after losing the lease, contend again with fresh caches
            await elector.run(lambda: run_controllers(client, names, options, election.identity))
