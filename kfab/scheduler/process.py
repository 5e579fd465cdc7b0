"""The scheduler as a process of its own or a component of `kfab server`: one Scheduler on its own informers,
optionally leader-elected (Lease kube-system/kfab-scheduler)."""

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
                        identity: str | None = None) -> None:
    """Run one scheduler on its own informers until cancelled; its Events name `identity` as reportingInstance."""
    informers = InformerFactory(client)
    recorder = EventRecorder(client, identity or socket.gethostname())
    scheduler = Scheduler(ControllerContext(client, informers, recorder), scheduler_name)
    informers.start()
    try:
        await scheduler.run()
    finally:
        await scheduler.close()
        await informers.stop()
        await recorder.close()


async def run(kubeconfig: Path, election: LeaderElectionConfig | None = None,
              scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> None:
    """Until cancelled; with an `election`, only while holding its Lease."""
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-scheduler", pool_size=100) as client:
        if election is None:
            await run_scheduler(client, scheduler_name)
            return
        elector = LeaderElector(client, election)
        while True:  # after losing the lease, contend again with fresh caches
            await elector.run(lambda: run_scheduler(client, scheduler_name, identity=election.identity))
