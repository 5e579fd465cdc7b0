"""`kfab dashboard`'s arguments; the process is kfab.dashboard.process."""

from __future__ import annotations

from pathlib import Path

from kfab.dashboard import process


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("dashboard", help="a live web view of the cluster for a big screen",
                              description="Serve a page showing nodes, pods on them, workloads' rollouts, services "
                              "with endpoints and the latest events, updated live from the API's watches. The "
                              "cluster's credentials stay in this process; the browser only gets the view.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("-i", "--inventory", type=Path, help="the cluster's inventory (the admin credentials "
                                                             "`kfab up` keeps on this machine)")
    source.add_argument("--kubeconfig", type=Path, help="a kubeconfig file instead of an inventory")
    p.add_argument("--playbook", default="site.yml", help="the play file the cluster was installed with")
    p.add_argument("--bind", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine "
                                                       "only; 0.0.0.0 lets others on the network see it)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=lambda args: process.run(args.inventory, args.playbook, args.kubeconfig, args.bind,
                                                 args.port, args.verbose))
