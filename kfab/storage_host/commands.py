"""`kfab provisioner nfs|iscsi`: the external provisioner of one storage host (see kfab/storage/__init__.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "provisioner", help="run the NFS or iSCSI volume provisioner on a storage host",
        description="Watch PersistentVolumeClaims handed to kfab.io/nfs or kfab.io/iscsi (by their StorageClass), "
                    "make a directory or a LUN on this host for each and the PersistentVolume describing it; "
                    "remove both when a Released volume's reclaim policy is Delete. Makes sure the StorageClass "
                    "kfab-nfs or kfab-iscsi exists. Settings: --config (see kfab/storage/config.py).")
    p.add_argument("kind", choices=("nfs", "iscsi"))
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--config", required=True, type=Path, help="YAML settings (roles/storage-provisioner writes it)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_provisioner)


def build_backend(config):
    if config.kind == "nfs":
        from kfab.storage.nfs import NFSProvisioner
        return NFSProvisioner(config)
    from kfab.storage.iscsi import ISCSIProvisioner
    return ISCSIProvisioner(config)


async def serve(kubeconfig: Path, config) -> None:
    from kfab.client import Client
    from kfab.controllers.base import ControllerContext
    from kfab.controllers.events import EventRecorder
    from kfab.controllers.informer import InformerFactory
    from kfab.storage.controller import ExternalProvisioner

    backend = build_backend(config)
    async with Client.from_kubeconfig(kubeconfig, user_agent=f"kfab-provisioner-{config.kind}") as client:
        informers = InformerFactory(client)
        recorder = EventRecorder(client, socket.gethostname())
        ctx = ControllerContext(client, informers, recorder, {"config": config, "backend": backend})
        controller = ExternalProvisioner(ctx)
        await controller.ensure_storage_class()
        informers.start()
        logging.getLogger(__name__).info("provisioner %s running", config.provisioner)
        try:
            await controller.run()
        finally:
            await informers.stop()
            await recorder.close()


def run_provisioner(args) -> int:
    from kfab.controllers.commands import _logging, _run_until_signal
    from kfab.storage.config import ConfigError, load_config

    _logging(args)
    try:
        config = load_config(args.kind, args.config)
    except ConfigError as e:
        print(f"kfab provisioner: {e}", file=sys.stderr)
        return 2
    return _run_until_signal(serve(args.kubeconfig, config))
