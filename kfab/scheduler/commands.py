"""`kfab scheduler`: the scheduler as a client of the API server, optionally leader-elected; also the hook
that runs it inside `kfab server`."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

from kfab.controllers.leader_args import add_leader_election_args

log = logging.getLogger(__name__)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "scheduler", help="run the scheduler (assigns pending pods to nodes) against an API server",
        description="Watch pods with no node whose schedulerName is ours, pick a node (filters: Ready, cordon, "
                    "taints, nodeSelector/affinity, resources, host ports; scores: least allocated, spread) and "
                    "bind them. With --leader-elect only the holder of the Lease kube-system/kfab-scheduler acts.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    add_leader_election_args(p)
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule the pods whose spec.schedulerName is this (default: default-scheduler)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_scheduler_command)


async def run_scheduler(client, scheduler_name: str = "default-scheduler", on_start=None,
                        identity: str | None = None) -> None:
    """Run one scheduler on its own informers until cancelled; its Events name `identity` as reportingInstance."""
    from kfab.controllers.base import ControllerContext
    from kfab.controllers.events import EventRecorder
    from kfab.controllers.informer import InformerFactory
    from kfab.scheduler.scheduler import Scheduler

    informers = InformerFactory(client)
    recorder = EventRecorder(client, identity or socket.gethostname())
    scheduler = Scheduler(ControllerContext(client, informers, recorder), scheduler_name)
    if on_start is not None:
        on_start(scheduler)
    informers.start()
    try:
        await scheduler.run()
    finally:
        await scheduler.close()
        await informers.stop()
        await recorder.close()


async def run(kubeconfig: Path, leader_elect: bool = False, election=None,
              scheduler_name: str = "default-scheduler") -> None:
    from kfab.client import Client
    from kfab.controllers.leader import LeaderElectionConfig, LeaderElector

    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-scheduler", pool_size=100) as client:
        if not leader_elect:
            await run_scheduler(client, scheduler_name)
            return
        election = election or LeaderElectionConfig(name="kfab-scheduler")
        elector = LeaderElector(client, election)
        while True:  # after losing the lease, contend again with fresh caches
            await elector.run(lambda: run_scheduler(client, scheduler_name, identity=election.identity))


async def in_process_scheduler(kubeconfig: Path) -> None:
    """The component `kfab server` runs in its own process (k3s-style)."""
    try:
        await run(kubeconfig)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the API server keeps serving; the log says what broke
        log.exception("in-process scheduler stopped")
        raise


def run_scheduler_command(args) -> int:
    from kfab.controllers.commands import _run_until_signal
    from kfab.controllers.leader import LeaderElectionConfig

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    election = None
    if args.leader_elect:
        try:
            election = LeaderElectionConfig(name="kfab-scheduler", lease_duration=args.leader_elect_lease_duration,
                                            renew_deadline=args.leader_elect_renew_deadline,
                                            retry_period=args.leader_elect_retry_period,
                                            identity=args.leader_elect_identity)
        except ValueError as e:
            print(f"kfab scheduler: {e}", file=sys.stderr)
            return 2
    return _run_until_signal(run(args.kubeconfig, args.leader_elect, election, args.scheduler_name))
