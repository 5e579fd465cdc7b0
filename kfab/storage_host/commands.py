"""`kfab provisioner nfs|iscsi`: the external provisioner of one storage host (see kfab/storage_host/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from kfab.storage_host import process
from kfab.storage_host.config import ConfigError, load_config


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "provisioner", help="run the NFS or iSCSI volume provisioner on a storage host",
        description="Watch PersistentVolumeClaims handed to kfab.io/nfs or kfab.io/iscsi (by their StorageClass), "
                    "make a directory or a LUN on this host for each and the PersistentVolume describing it; "
                    "remove both when a Released volume's reclaim policy is Delete. Makes sure the StorageClass "
                    "kfab-nfs or kfab-iscsi exists. Settings: --config (see kfab/storage_host/config.py).")
    p.add_argument("kind", choices=("nfs", "iscsi"))
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--config", required=True, type=Path, help="YAML settings (roles/storage-provisioner writes it)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_provisioner)


def run_provisioner(args) -> int:
    try:
        config = load_config(args.kind, args.config)
    except ConfigError as e:
        print(f"kfab provisioner: {e}", file=sys.stderr)
        return 2
    return process.run(args.kubeconfig, config, args.verbose)
