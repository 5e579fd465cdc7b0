"""`kfab dashboard`: the cluster's client (the admin's, from the inventory's PKI on this machine, or a kubeconfig),
the view kept by its watches, and the web server — until SIGTERM or Ctrl-C."""

from __future__ import annotations

import ipaddress
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import yaml

from kfab.client import Client, KubeconfigError
from kfab.daemon import run_until_signal, setup_logging
from kfab.dashboard.server import serve
from kfab.dashboard.view import ClusterView
from kfab.ops.cluster import Cluster, OpsError


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _context_name(kubeconfig: Path) -> str:
    try:
        return str((yaml.safe_load(kubeconfig.read_text()) or {}).get("current-context") or kubeconfig.name)
    except (OSError, yaml.YAMLError, AttributeError):
        return kubeconfig.name


@asynccontextmanager
async def _client(cluster: Cluster | None, kubeconfig: Path | None):
    if cluster is not None:
        async with cluster.client() as client:
            yield client
        return
    client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-dashboard")
    try:
        yield client
    finally:
        await client.close()


def run(inventory: Path | None, playbook: str, kubeconfig: Path | None, bind: str, port: int,
        verbose: bool = False) -> int:
    setup_logging(verbose)
    try:
        cluster = Cluster(inventory, playbook) if inventory is not None else None
        title = cluster.name if cluster is not None else _context_name(kubeconfig)
        if cluster is not None:
            cluster.admin_kubeconfig()   # fail now, in one line, if this machine has no admin credentials
    except OpsError as exc:
        print(f"kfab dashboard: {exc}", file=sys.stderr)
        return 1
    if not _is_loopback(bind):
        print(f"kfab dashboard: serving on {bind}: anyone who reaches it sees the cluster's nodes, pods, services "
              f"and events (read-only, no login)", file=sys.stderr)

    def ready(url: str) -> None:
        print(f"kfab dashboard: {url} (cluster {title}; Ctrl-C stops)", file=sys.stderr, flush=True)

    async def main() -> None:
        async with _client(cluster, kubeconfig) as client:
            await serve(ClusterView(client), title, bind, port, ready)

    return run_until_signal(main(), errors=(OSError, KubeconfigError, aiohttp.ClientError, OpsError))
