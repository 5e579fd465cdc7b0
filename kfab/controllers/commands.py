"""`kfab controller-manager` and `kfab hollow-node` (simulated nodes for tests and benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from kfab.client import KubeconfigError
from kfab.controllers.leader_args import add_leader_election_args


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "controller-manager", help="run the controllers (Deployment, ReplicaSet, GC, Namespace, ...) against an API",
        description="Run the controllers as a client of the API server the kubeconfig names. With --leader-elect, "
                    "several controller-managers can run and only the holder of the Lease "
                    "kube-system/kfab-controller-manager acts.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    add_leader_election_args(p)
    p.add_argument("--node-monitor-grace-period", type=float, default=20.0, metavar="SECONDS",
                   help="a node whose Lease is not renewed for this long becomes Unknown (default 20)")
    p.add_argument("--pod-eviction-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="pods on an unreachable/not-ready node are evicted this long after it was tainted (default 10)")
    p.add_argument("--controllers", default="*",
                   help="comma-separated: '*' all, 'name' enable, '-name' disable (default '*')")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_controller_manager)

    p = subparsers.add_parser(
        "hollow-node", help="run N simulated nodes (kubemark-style) that register, heartbeat and 'run' pods",
        description="Simulated node agents for tests and benchmarks: each registers a Node, renews its Lease in "
                    "kube-node-lease and moves pods bound to it to Running/Ready without running containers.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--name-prefix", default="hollow-node-")
    p.add_argument("--lease-interval", type=float, default=10.0, metavar="SECONDS",
                   help="renew each node's Lease this often (default 10, as kubelet)")
    p.add_argument("--delete-on-exit", action="store_true", help="delete the Nodes and Leases when stopped")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_hollow_node)


def _logging(args) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_until_signal(main) -> int:
    """Run coroutine `main` until it ends or SIGTERM/SIGINT arrive (then cancel it: a clean stop)."""

    async def runner() -> None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(runner())
    except (KubeconfigError, ValueError, OSError) as e:
        print(f"kfab: {e}", file=sys.stderr)
        return 1
    return 0


def run_controller_manager(args) -> int:
    from kfab.controllers.leader import LeaderElectionConfig
    from kfab.controllers.manager import run_manager, select

    _logging(args)
    names = [n.strip() for n in args.controllers.split(",") if n.strip()]
    try:
        select(names)
        election = LeaderElectionConfig(lease_duration=args.leader_elect_lease_duration,
                                        renew_deadline=args.leader_elect_renew_deadline,
                                        retry_period=args.leader_elect_retry_period,
                                        identity=args.leader_elect_identity) if args.leader_elect else None
    except ValueError as e:
        print(f"kfab controller-manager: {e}", file=sys.stderr)
        return 2
    return _run_until_signal(run_manager(args.kubeconfig, args.leader_elect, election, names, options={
        "node-monitor-grace-period": args.node_monitor_grace_period,
        "pod-eviction-timeout": args.pod_eviction_timeout}))


def run_hollow_node(args) -> int:
    from kfab.node.hollow import run_hollow_nodes

    _logging(args)
    if args.count < 1:
        print("kfab hollow-node: --count must be at least 1", file=sys.stderr)
        return 2
    return _run_until_signal(run_hollow_nodes(args.kubeconfig, args.count, args.name_prefix, args.lease_interval,
                                              args.delete_on_exit))
