"""Run the API server: open the store, make sure the PKI exists, bootstrap RBAC, serve TLS until told to stop.

`kfab server` (one machine: SQLite in the data dir) and `kfab apiserver` (any store URL, e.g. etcd for HA)
both end up here; they differ only in the store URL and in the components that run in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Sequence

from aiohttp import web

from kfab.api.app import APIServices, build_app
from kfab.api.audit import AuditConfig
from kfab.api.auth import Authenticator
from kfab.api.crd_serving import CustomResourceServing
from kfab.api.metrics import RESOLUTION as METRIC_RESOLUTION, MetricsProvider
from kfab.api.inflight import InFlightLimits
from kfab.api.memory import bound_tls_buffers, map_large_blocks, return_freed_memory, tune_garbage_collector
from kfab.api.bootstrap import bootstrap_kubernetes_service, bootstrap_namespaces, bootstrap_priority_classes
from kfab.api.node_authorizer import NodeAuthorizer, NodeGraph
from kfab.api.pod_security import PodSecurityConfig
from kfab.api.toleration_admission import DefaultTolerationSeconds
from kfab.api.rbac import RBACAuthorizer, bootstrap_rbac
from kfab.api.serviceaccount_tokens import ServiceAccountTokenAuthenticator, TokenSigner
from kfab.api.watchhub import WatchHub
from kfab.api.admission import AdmissionChain
from kfab.api.kubelet_proxy import NodeExecProxy, NodeLogProxy, kubelet_client_ssl_context, node_reader
from kfab.objects.registry import ResourceRegistry
from kfab.pki import ensure_control_plane_pki, server_ssl_context, write_kubeconfig
from kfab.pki.encryption import CONFIG_FILE as ENCRYPTION_CONFIG_FILE
from kfab.pki.encryption import ensure_config
from kfab.store import open_store
from kfab.store.encryption import EncryptedStore, EncryptionError, Transformer, reencrypt, unreadable

log = logging.getLogger(__name__)

ADMIN_KUBECONFIG = "admin.kubeconfig"
# As kube-apiserver's --etcd-compaction-interval: every interval, forget history older than the previous tick.
COMPACTION_INTERVAL = 300.0
# Long-running watches get this long to finish when the server stops; then they are cut.
SHUTDOWN_TIMEOUT = 2.0

# A component that runs inside the API server's process (k3s-style): given the admin kubeconfig path, it
# runs until cancelled. Controllers and the scheduler plug in here when `kfab server` starts them.
Component = Callable[[Path], Awaitable[None]]


@dataclass
class ServerConfig:
    store_url: str
    data_dir: Path
    bind: str = "127.0.0.1"
    port: int = 6443
    tokens_file: Path | None = None
    tls_sans: list[str] = field(default_factory=list)  # extra names/IPs for the serving certificate
    compaction_interval: float = COMPACTION_INTERVAL
    metric_resolution: float = METRIC_RESOLUTION  # how often node agents' resource metrics are scraped
    advertise_address: str | None = None  # the IP the `kubernetes` Service's Endpoints name
    components: Sequence[Component] = ()
    inflight: InFlightLimits = field(default_factory=InFlightLimits)
    encryption_config: Path | None = None  # default: DATA_DIR/pki/encryption-config.yaml
    pod_security: PodSecurityConfig | None = None  # defaults and exemptions of Pod Security admission
    audit: AuditConfig | None = None  # None: no audit log
    # How long new pods stay on a NotReady / unreachable node before eviction (DefaultTolerationSeconds).
    default_tolerations: DefaultTolerationSeconds = field(default_factory=DefaultTolerationSeconds)


def _certificate_names(config: ServerConfig) -> tuple[list[str], list[str]]:
    hostnames, ips = [socket.gethostname()], []
    for name in [config.bind, *config.tls_sans, *([config.advertise_address] if config.advertise_address else [])]:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            hostnames.append(name)
            continue
        if not address.is_unspecified:
            ips.append(str(address))
    return hostnames, ips


def _url_host(bind: str) -> str:
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        return bind
    if address.is_unspecified:
        return "127.0.0.1"
    return f"[{address}]" if address.version == 6 else str(address)


def _advertise(config: ServerConfig) -> str:
    """The bind address when it is one; else the address this host reaches others from (no packet is sent)."""
    if _is_ip(config.bind) and not ipaddress.ip_address(config.bind).is_unspecified:
        return config.bind
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        return s.getsockname()[0]
    return "127.0.0.1"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _compact_periodically(store, interval: float) -> None:
    previous = None
    while True:
        await asyncio.sleep(interval)
        current = await store.current_revision()
        if previous:
            try:
                await store.compact(previous)
            except Exception as e:  # noqa: BLE001 - another API server may have compacted further already
                log.info("compaction to %d skipped: %s", previous, e)
        previous = current


async def _reencrypt(store: EncryptedStore) -> None:
    """Rewrite what is stored in plaintext or with an old key (after encryption is turned on, or a key rotation)."""
    try:
        rewritten = await reencrypt(store)
    except Exception as e:  # noqa: BLE001 - the next start tries again; serving goes on meanwhile
        log.warning("re-encrypting stored objects failed: %s", e)
        return
    if rewritten:
        log.info("re-encrypted %d stored objects with the current write key", rewritten)


async def serve(config: ServerConfig, stop: asyncio.Event, started: Callable[[str], None] | None = None) -> None:
    """Serve until `stop` is set. `started(url)` is called once the server accepts requests."""
    bound_tls_buffers()
    map_large_blocks()
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.data_dir.chmod(0o700)  # state, keys and kubeconfigs: for this host's root only
    except OSError as e:
        raise OSError(f"cannot create the data directory {config.data_dir}: {e.strerror or e}") from None
    store = await open_store(config.store_url)
    tasks: list[asyncio.Task] = []
    hub = None
    authorizer = NodeAuthorizer(RBACAuthorizer(store), NodeGraph(store))  # Node, then RBAC (as --authorization-mode)
    runner = None
    try:
        hostnames, ips = _certificate_names(config)
        pki = ensure_control_plane_pki(config.data_dir, hostnames, ips)
        # Secrets at rest: `kfab up` puts the cluster's one configuration here (every API server shares its keys);
        # `kfab server` makes its own on first start.
        encryption = ensure_config(config.encryption_config or pki.dir / ENCRYPTION_CONFIG_FILE)
        store = EncryptedStore(store, Transformer(encryption))
        bad = await unreadable(store)
        if bad:
            # Typically several API servers over one etcd, each with a key of its own: refuse rather than serve
            # 500s for those objects (and let this server's writes be unreadable to the others).
            raise EncryptionError(f"{len(bad)} stored objects (e.g. {bad[0]}) are encrypted with a key "
                                  f"{config.encryption_config or pki.dir / ENCRYPTION_CONFIG_FILE} does not hold: "
                                  "every API server of a cluster needs the same encryption configuration")
        tasks.append(asyncio.create_task(_reencrypt(store), name="reencrypt"))
        await bootstrap_rbac(store)
        await bootstrap_namespaces(store)
        await bootstrap_priority_classes(store)
        await authorizer.start()
        hub = WatchHub(store)  # one store watch shared by every client's watch
        await hub.start()
        admission = AdmissionChain(store, pod_security=config.pod_security,
                                   default_tolerations=config.default_tolerations)
        registry = ResourceRegistry()  # this server's own: the CRDs it serves are added to it
        custom_resources = CustomResourceServing(store, hub.subscribe, registry)
        await custom_resources.refresh()
        tasks.append(asyncio.create_task(custom_resources.run(), name="custom-resources"))
        kubelet_ssl = kubelet_client_ssl_context(pki)  # the API server's client certificate towards node agents
        metrics = MetricsProvider(store, kubelet_ssl, config.metric_resolution)
        tasks.append(asyncio.create_task(metrics.run(), name="resource-metrics"))
        token_signer = TokenSigner.from_file(pki.service_account_key_path)
        services = APIServices(
            store=store, watch_source=hub.subscribe,
            authenticator=Authenticator(config.tokens_file, client_ca=pki.ca_cert_path,
                                        token_authenticators=[ServiceAccountTokenAuthenticator(token_signer, store)]),
            authorizer=authorizer, admission=admission, token_signer=token_signer,
            registry=registry, custom_resources=custom_resources, metrics=metrics,
            pod_logs=NodeLogProxy(node_reader(store), kubelet_ssl),
            pod_exec=NodeExecProxy(node_reader(store), kubelet_ssl), inflight=config.inflight,
            audit=config.audit.open() if config.audit is not None else None)
        app = build_app(services)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, config.bind, config.port, ssl_context=server_ssl_context(pki))
        try:
            await site.start()
        except OSError as e:
            raise OSError(f"cannot listen on {config.bind}:{config.port}: {e.strerror or e}") from None
        port = site._server.sockets[0].getsockname()[1] if config.port == 0 else config.port  # noqa: SLF001
        url = f"https://{_url_host(config.bind)}:{port}"
        await bootstrap_kubernetes_service(store, admission, port, config.advertise_address or _advertise(config))
        kubeconfig = write_kubeconfig(config.data_dir / ADMIN_KUBECONFIG, url, pki.ca_cert_pem,
                                      pki.admin_cert_pem, pki.admin_key_pem, user="kubernetes-admin")
        tasks.append(asyncio.create_task(_compact_periodically(store, config.compaction_interval), name="compactor"))
        tasks.append(asyncio.create_task(return_freed_memory(), name="malloc-trim"))
        tune_garbage_collector()
        for component in config.components:
            tasks.append(asyncio.create_task(component(kubeconfig), name=getattr(component, "__name__", "component")))
        if started:
            started(url)
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await authorizer.stop()
        if hub is not None:
            await hub.close()
        await store.close()
