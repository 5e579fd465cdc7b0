"""The `kfab provisioner nfs|iscsi` process: the external provisioner of this storage host, on its own
informers, until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from kfab.client import Client, KubeconfigError
from kfab.daemon import run_until_signal, setup_logging
from kfab.machinery.controller import ControllerContext
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import InformerFactory
from kfab.storage_host.config import ProvisionerConfig
from kfab.storage_host.controller import ExternalProvisioner
from kfab.storage_host.iscsi import ISCSIProvisioner
from kfab.storage_host.nfs import NFSProvisioner


def build_backend(config):
    if config.kind == "nfs":
        return NFSProvisioner(config)
    return ISCSIProvisioner(config)


async def serve(kubeconfig: Path, config) -> None:
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


def run(kubeconfig: Path, config: ProvisionerConfig, verbose: bool = False) -> int:
    setup_logging(verbose)
    return run_until_signal(serve(kubeconfig, config), errors=(KubeconfigError, ValueError, OSError))
