"""One installed cluster as the lifecycle commands see it: the inventory, the roles' variables resolved as
`kfab up` resolves them, SSH to a host (the provisioner's connections), the admin's API client, and a
limited `kfab up` run."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import yaml
from cryptography import x509

from kfab.pki import ca as ca_mod
from kfab.pki.ca import PKIError
from kfab.pki.kubeconfig import kubeconfig
from kfab.provision.api import DEFAULT_PLAYBOOK, HostUnreachable, ProvisionError, RemoteHost, Site
from kfab.provision.modules.base import CommandResult


class OpsError(Exception):
    """A lifecycle command refused or failed; the message is one line naming inventory, host or node."""


def command(name: str):
    """`kfab NAME`'s entry point: an OpsError is printed as one line and exits 1."""
    def wrap(fn):
        def run(args) -> int:
            try:
                return int(fn(args) or 0)
            except OpsError as exc:
                print(f"kfab {name}: {exc}", file=sys.stderr)
                return 1
        return run
    return wrap


class Cluster:
    def __init__(self, inventory_path: str | Path, playbook: str | Path = DEFAULT_PLAYBOOK,
                 extra_vars: list[str] | None = None):
        self.inventory_path = Path(inventory_path)
        try:
            self.site = Site(self.inventory_path, playbook, extra_vars or [])
        except ProvisionError as exc:
            raise OpsError(str(exc)) from None
        self.inventory = self.site.inventory

    # ---- inventory ----------------------------------------------------------------------------------
    def group(self, name: str) -> list[str]:
        return self.site.group(name)

    @property
    def control_plane(self) -> list[str]:
        hosts = self.group("control_plane")
        if not hosts:
            raise OpsError(f"{self.inventory_path}: group 'control_plane' has no hosts")
        return hosts

    def require_host(self, host: str) -> None:
        if host not in self.inventory.hosts:
            raise OpsError(f"{self.inventory_path}: no host {host!r} (hosts: {', '.join(self.inventory.hosts)})")

    def select(self, pattern: str | None) -> list[str]:
        hosts = self.site.select(pattern)
        if not hosts:
            raise OpsError(f"--limit {pattern!r} matches no host of {self.inventory_path}")
        return hosts

    def var(self, host: str, name: str, default=None):
        try:
            return self.site.var(host, name, default)
        except ProvisionError as exc:
            raise OpsError(f"host {host}: {exc}") from None

    @property
    def name(self) -> str:
        return str(self.var(self.control_plane[0], "kfab_cluster_name", "kfab"))

    @property
    def pki_dir(self) -> Path:
        return Path(os.path.expanduser(str(self.var(self.control_plane[0], "kfab_pki_dir"))))

    @property
    def server_url(self) -> str:
        return str(self.var(self.control_plane[0], "control_plane_server_url"))

    def address(self, host: str) -> str:
        return str(self.var(host, "ansible_host", host))

    def node_name(self, host: str) -> str:
        return str(self.var(host, "node_agent_name", host))

    def host_of_node(self, node: str) -> str | None:
        for host in self.inventory.hosts:
            if self.node_name(host) == node:
                return host
        return None

    # ---- SSH ----------------------------------------------------------------------------------------
    def connect(self, host: str) -> RemoteHost:
        """The host over the provisioner's SSH (same connection variables, host key checks, errors)."""
        try:
            return self.site.connect(host)
        except HostUnreachable as exc:
            raise OpsError(f"host {host}: unreachable: {exc}") from None

    @contextmanager
    def ssh(self, host: str):
        remote = self.connect(host)
        try:
            yield remote
        finally:
            remote.close()

    def run(self, remote: RemoteHost, cmd: str, what: str) -> CommandResult:
        """Run a command that must succeed; a failure is an OpsError naming the host and what was being done."""
        result = remote.run(cmd)
        if result.rc != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise OpsError(f"host {remote.name}: {what} failed (exit {result.rc})"
                           + (f": {detail[-1]}" if detail else ""))
        return result

    # ---- the API ------------------------------------------------------------------------------------
    def admin_kubeconfig(self) -> dict:
        """The cluster admin's kubeconfig, from the CA and admin pair `kfab up` keeps on this machine."""
        pki = self.pki_dir
        ca_cert, cert, key = pki / "ca.crt", pki / "issued" / "admin.crt", pki / "issued" / "admin.key"
        for path in (ca_cert, cert, key):
            if not path.is_file():
                raise OpsError(f"{path} is missing: the cluster of {self.inventory_path} has no admin certificate "
                               f"yet (run `kfab up -i {self.inventory_path}` first)")
        try:
            pair = ca_mod.load(cert, key)
            ca_pem = ca_cert.read_bytes()
            if not ca_mod.signed_by(pair.cert, x509.load_pem_x509_certificate(ca_pem)):
                raise OpsError(f"{cert} is not signed by {ca_cert}: run `kfab up -i {self.inventory_path}` again")
        except (PKIError, ValueError, OSError) as exc:
            raise OpsError(f"{pki}: {exc}") from None
        name = self.name
        config = kubeconfig(self.server_url, ca_pem, pair.cert_pem, pair.key_pem, user=f"{name}-admin",
                            cluster=name)
        config["contexts"][0]["name"] = name
        config["current-context"] = name
        return config

    @asynccontextmanager
    async def client(self):
        from kfab.client import Client
        from kfab.client.kubeconfig import load_kubeconfig
        config = self.admin_kubeconfig()
        with tempfile.TemporaryDirectory(prefix="kfab-ops-") as tmp:
            path = Path(tmp, "admin.kubeconfig")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(config, f)
            client_config = load_kubeconfig(path)
        client = Client(client_config, user_agent="kfab-ops")
        try:
            yield client
        finally:
            await client.close()

    def api(self, coroutine_fn, *args, **kwargs):
        """Run `coroutine_fn(client, ...)` with the admin's client, from synchronous code; API and network
        failures become one OpsError naming the cluster's API server."""
        import aiohttp

        from kfab.client import APIStatusError, KubeconfigError
        from kfab.ops.drain import DrainError

        async def main():
            async with self.client() as client:
                return await coroutine_fn(client, *args, **kwargs)
        try:
            return asyncio.run(main())
        except DrainError as exc:
            raise OpsError(str(exc)) from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, KubeconfigError) as exc:
            raise OpsError(f"the API server of cluster {self.name} at {self.server_url} does not answer: "
                           f"{exc or type(exc).__name__}") from None
        except APIStatusError as exc:
            raise OpsError(f"the API server at {self.server_url} refused: {exc}") from None

    # ---- provisioning -------------------------------------------------------------------------------
    def up(self, limit: str, extra: list[str] = (), verbose: int = 0) -> int:
        """`kfab up -i INV PLAYBOOK --limit LIMIT`, output and exit code as that command's."""
        return self.site.up(limit, extra, verbose)
