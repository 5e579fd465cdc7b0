"""The scheduler as a process of its own or a component of `kfab server`: one Scheduler on its own informers,
or on the process's shared ones in `kfab server`, optionally leader-elected (Lease kube-system/kfab-scheduler)."""

from __future__ import annotations

import socket
from pathlib import Path

from kfab.client import Client
from kfab.machinery.controller import ControllerContext
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import InformerFactory
from kfab.machinery.leader import LeaderElectionConfig, LeaderElector
from kfab.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler


async def run_scheduler(client: Client, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                        identity: str | None = None, informers: InformerFactory | None = None) -> None:
    """Run one scheduler until cancelled; its Events name `identity` as reportingInstance.

    `informers`: the process's shared informers (which their owner stops), else informers of its own."""
    own = informers is None
    if informers is None:
        informers = InformerFactory(client)
    recorder = EventRecorder(client, identity or socket.gethostname())
    scheduler = Scheduler(ControllerContext(client, informers, recorder), scheduler_name)
    informers.start()
    try:
        await scheduler.run()
    finally:
        await scheduler.close()
        if own:
            await informers.stop()
        await recorder.close()


async def run(kubeconfig: Path, election: LeaderElectionConfig | None = None,
              scheduler_name: str = DEFAULT_SCHEDULER_NAME, informers: InformerFactory | None = None) -> None:
    """Until cancelled; with an `election`, only while holding its Lease (on informers of its own)."""
    if election is not None and informers is not None:
        raise ValueError("a leader-elected scheduler keeps informers of its own")
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-scheduler", pool_size=100) as client:
        if election is None:
            await run_scheduler(client, scheduler_name, informers=informers)
            return
        elector = LeaderElector(client, election)
        while True:  # after losing the lease, contend again with fresh caches
            await elector.run(lambda: run_scheduler(client, scheduler_name, identity=election.identity))
