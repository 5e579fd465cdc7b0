"""The lifecycle commands' arguments (kfab add-node, remove-node, drain, uncordon, reset, upgrade, backup,
restore, rotate-certs, kubeconfig). Each runs a module of kfab.ops; `kfab kubeconfig --data-dir` (no
inventory: a control plane's data directory) runs kfab.ops.local_kubeconfig."""

from __future__ import annotations

import sys
from pathlib import Path

from kfab.ops import backup, certs, encryption, etcd, kubeconfig, local_kubeconfig, nodes, reset, upgrade
from kfab.ops.cluster import DEFAULT_PLAYBOOK


def _common(p, extra_vars: bool = False) -> None:
    p.add_argument("-i", "--inventory", required=True, help="inventory file of the cluster (as for kfab up)")
    p.add_argument("--playbook", default=DEFAULT_PLAYBOOK,
                   help=f"the play file the cluster was installed with (default {DEFAULT_PLAYBOOK})")
    if extra_vars:
        p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                       help="extra variables for the kfab up runs, as kfab up takes them")


def _either(with_inventory, without):
    def run(args) -> int:
        if args.inventory and getattr(args, "data_dir", None):
            print("kfab rotate-encryption-key: -i and --data-dir exclude each other", file=sys.stderr)
            return 2
        return with_inventory(args) if args.inventory else without(args)
    return run


def _drain_options(p) -> None:
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for pods to go (default 300)")
    p.add_argument("--force", action="store_true", help="also delete pods no controller manages")
    p.add_argument("--delete-emptydir-data", action="store_true", help="also delete pods with emptyDir data")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("add-node", help="provision a host of group workers and wait for its Node",
                              description="Run site.yml for HOST alone (HOST must be in the inventory's group "
                                          "workers) and wait until its Node is Ready and schedulable.")
    _common(p, extra_vars=True)
    p.add_argument("host", metavar="HOST", help="inventory name of the new worker")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for the Node to be Ready")
    p.set_defaults(func=nodes.run_add_node)

    p = subparsers.add_parser("remove-node", help="drain a Node, stop its agent, delete it",
                              description="Cordon and drain NODE, stop and disable kfab-node/kfab-proxy on its "
                                          "host, then delete the Node object.")
    _common(p)
    p.add_argument("node", metavar="NODE")
    _drain_options(p)
    p.add_argument("--host-gone", action="store_true",
                   help="the host is gone for good: no SSH, its pods are deleted at once (grace period 0)")
    p.set_defaults(func=nodes.run_remove_node)

    p = subparsers.add_parser("drain", help="cordon a Node and move its pods off (as kubectl drain)")
    _common(p)
    p.add_argument("node", metavar="NODE")
    _drain_options(p)
    p.set_defaults(func=nodes.run_drain)

    p = subparsers.add_parser("uncordon", help="make a Node schedulable again")
    _common(p)
    p.add_argument("node", metavar="NODE")
    p.set_defaults(func=nodes.run_uncordon)

    p = subparsers.add_parser("reset", help="remove kfab from hosts, leaving them as before kfab up",
                              description=reset.__doc__.split("\n\n", 1)[1])
    _common(p)
    p.add_argument("-l", "--limit", help="only these hosts/groups (Ansible host pattern)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=reset.run)

    p = subparsers.add_parser("upgrade", help="roll a new kfab out host by host, the cluster serving throughout",
                              description=upgrade.__doc__.split("\n\n", 1)[1])
    _common(p, extra_vars=True)
    p.add_argument("--wheelhouse", type=Path,
                   help="a wheelhouse directory with the new kfab (default: build one from this kfab's sources)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per drain / per node to get Ready")
    p.set_defaults(func=upgrade.run)

    p = subparsers.add_parser("backup", help="back up the state store (SQLite file or etcd snapshot)")
    _common(p)
    p.add_argument("-o", "--output", type=Path, help="backup file (default: in the cluster's directory on this "
                                                     "machine, named by date)")
    p.add_argument("--schedule", metavar="CALENDAR",
                   help="instead of one backup now: a systemd timer on the store's host taking one at CALENDAR "
                        "(hourly, daily, '*-*-* 00/6:00:00', ...) into /var/backups/kfab; 'off' removes it")
    p.add_argument("--keep", type=int, default=7, metavar="N", help="with --schedule: snapshots kept (default 7)")
    p.set_defaults(func=backup.run_backup)

    p = subparsers.add_parser("etcd", help="the etcd members of a cluster with the etcd store")
    etcd_sub = p.add_subparsers(dest="etcd_command", metavar="ACTION", required=True)
    status = etcd_sub.add_parser("status", help="each member: endpoint, ID, leader, DB size, raft term, revision, "
                                                "health (exit 3 unless all are healthy under one leader)")
    _common(status)
    status.set_defaults(func=etcd.run_status)

    p = subparsers.add_parser("replace-etcd-member", help="replace a failed etcd member (same name and address)",
                              description="Remove HOST's member from etcd on a healthy member, add it back under "
                                          "the same name and peer URL, move its old data aside and provision it "
                                          "(kfab up --limit HOST) to join the running cluster. Needs a quorum of "
                                          "healthy members besides HOST.")
    _common(p, extra_vars=True)
    p.add_argument("host", metavar="HOST")
    p.set_defaults(func=etcd.run_replace)

    p = subparsers.add_parser("restore", help="restore the state store from a backup (the API is down meanwhile)")
    _common(p)
    p.add_argument("file", type=Path, metavar="BACKUP")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=backup.run_restore)

    p = subparsers.add_parser("rotate-certs", help="new certificates from the same CA, services restarted one "
                                                   "at a time")
    _common(p, extra_vars=True)
    p.set_defaults(func=certs.run)

    # `kfab rotate-encryption-key` is controlplane's command (--data-dir, a stopped kfab server); -i INVENTORY
    # (a cluster kfab up installed) is added here, so that one command name serves both.
    p = subparsers.choices["rotate-encryption-key"]
    p.add_argument("-i", "--inventory", help="inventory file of the cluster (as for kfab up)")
    p.add_argument("--playbook", default=DEFAULT_PLAYBOOK,
                   help=f"the play file the cluster was installed with (default {DEFAULT_PLAYBOOK})")
    p.set_defaults(func=_either(encryption.run, p.get_default("func")), extra_vars=[])

    p = subparsers.add_parser(
        "kubeconfig", help="write a kubeconfig for the cluster admin or a named user",
        description="Write a kubeconfig signed by the cluster CA in DIR/pki: the admin (CN=kubernetes-admin, "
                    "O=system:masters) by default, or --user with --group memberships (RBAC decides what they may do).")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-i", "--inventory", help="the admin of the cluster `kfab up -i INVENTORY` installed; without "
                                                 "-o, merged into ~/.kube/config as a context named after the cluster")
    where.add_argument("--data-dir", type=Path, help="the API server's data directory (holds pki/)")
    p.add_argument("--playbook", default="site.yml", help="with -i: the play file the cluster was installed with")
    p.add_argument("--user", help="user name (certificate CN); default: the cluster admin")
    p.add_argument("--group", action="append", default=[], help="group (certificate O); repeatable")
    p.add_argument("--server", help="API server URL; default: the one the API server recorded in DIR")
    p.add_argument("-o", "--output", type=Path, help="write here (mode 0600) instead of standard output "
                                                     "(with -i: instead of merging; '-' prints it)")
    p.set_defaults(func=run_kubeconfig)


def run_kubeconfig(args) -> int:
    return kubeconfig.run(args) if args.inventory else local_kubeconfig.run(args)
