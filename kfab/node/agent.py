"""`kfab node`'s main loop: register the Node, watch the pods bound to it, run one worker per pod.

Start-up order matters for adoption: the pod informer syncs first, then Podman pods of kfab whose Kubernetes
pod is no longer bound here are removed, and every bound pod's worker finds its Podman pod and containers by
name and labels (no duplicates) and restarts what should run — after a host restart Podman brings containers
back only "Created".
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from kfab.client import APIStatusError, Client, KubeconfigError, rt_of
from kfab.daemon import run_until_signal, setup_logging
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import Informer
from kfab.node.logs import LogServer
from kfab.node.podnet import PodNetwork, run_pod_network
from kfab.node.pods import NodeContext, PodWorker
from kfab.node.registration import NodeRegistration, heartbeat_client, keep_lease
from kfab.objects.kubelet import KUBELET_PORT
from kfab.node.runtime import DEFAULT_SOCKET, LABEL_UID, PodmanRuntime, RuntimeError_
from kfab.node.volumes import DEFAULT_ROOT, PodVolumes

log = logging.getLogger(__name__)

ORPHAN_SWEEP = 30.0
LOOKUP_KINDS = {"ConfigMap": ("v1", "ConfigMap"), "Secret": ("v1", "Secret"),
                "PersistentVolumeClaim": ("v1", "PersistentVolumeClaim"),
                "PersistentVolume": ("v1", "PersistentVolume")}


@dataclass
class AgentConfig:
    kubeconfig: Path
    node_name: str
    podman_socket: str = DEFAULT_SOCKET
    node_ip: str | None = None
    cluster_cidr: str = "10.244.0.0/16"
    network: str = "podnet"
    pods_root: Path = DEFAULT_ROOT
    port: int = KUBELET_PORT
    serving_cert: Path | None = None
    serving_key: Path | None = None
    client_ca: Path | None = None
    cluster_dns: str | None = None
    cluster_domain: str = "cluster.local"


def address_towards(server_url: str) -> str:
    """This host's address on the route to the API server (what other hosts reach it by)."""
    parsed = urlparse(server_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((parsed.hostname, parsed.port or 443))
        return s.getsockname()[0]


class NodeAgent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.client = Client.from_kubeconfig(config.kubeconfig, user_agent=f"kfab-node/{config.node_name}")
        self.heartbeat = heartbeat_client(config.kubeconfig, config.node_name)
        self.runtime = PodmanRuntime(config.podman_socket)
        self.workers: dict[str, PodWorker] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.pods = Informer(self.client, rt_of("Pod"), resync=0,
                             field_selector=f"spec.nodeName={config.node_name}")
        self.services = Informer(self.client, rt_of("Service"), resync=0)
        self.ctx: NodeContext | None = None
        self._stop_events = threading.Event()

    async def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        rt = rt_of(LOOKUP_KINDS[kind][1], LOOKUP_KINDS[kind][0])
        try:
            return await self.client.get(rt, namespace or None, name)
        except APIStatusError as e:
            if e.not_found:
                return None
            raise

    def pod_uid(self, namespace: str, name: str) -> str | None:
        pod = self.pods.get_by(namespace, name)
        return pod["metadata"]["uid"] if pod else None

    async def run(self) -> None:
        cfg = self.config
        host_ip = cfg.node_ip or address_towards(self.client.config.server)
        starting = asyncio.create_task(keep_lease(self.heartbeat, cfg.node_name), name="lease-while-starting")
        try:
            info = await self.runtime.info()
            version = (info.get("version") or {}).get("Version", "unknown")
            registration = NodeRegistration(self.client, cfg.node_name, host_ip, cfg.cluster_cidr, cfg.port,
                                            f"podman://{version}", heartbeat=self.heartbeat)
            await registration.register()
            network = PodNetwork(self.runtime, cfg.network)
            await network.ensure(registration.pod_cidr)
        finally:
            starting.cancel()
        self.ctx = NodeContext(node_name=cfg.node_name, host_ip=host_ip, client=self.client, runtime=self.runtime,
                               volumes=PodVolumes(cfg.pods_root, self.lookup, self.client, cfg.node_name),
                               lookup=self.lookup,
                               network=cfg.network, events=EventRecorder(self.client, cfg.node_name),
                               sandbox_options=network.sandbox_options(), cluster_dns=cfg.cluster_dns,
                               cluster_domain=cfg.cluster_domain, services=self.services)
        log.info("node %s registered (InternalIP %s, podCIDR %s)", cfg.node_name, host_ip, registration.pod_cidr)
        background = [asyncio.create_task(registration.run_heartbeats(), name="heartbeats"),
                      asyncio.create_task(run_pod_network(self.client, cfg.node_name, cfg.cluster_cidr),
                                          name="pod-network"),
                      asyncio.create_task(self.pods.run(), name="pod-informer"),
                      asyncio.create_task(self.services.run(), name="service-informer")]
        log_server = None
        if cfg.serving_cert and cfg.serving_key and cfg.client_ca:
            log_server = LogServer(self.runtime, self.pod_uid, cfg.serving_cert, cfg.serving_key, cfg.client_ca,
                                   port=cfg.port)
            await log_server.start()
        loop = asyncio.get_running_loop()
        # A daemon thread, not the executor: it blocks in Podman's event stream, and asyncio.run() would wait
        # for an executor thread at exit.
        threading.Thread(target=self.runtime.watch_exits, name="podman-events", daemon=True,
                         args=(lambda event: loop.call_soon_threadsafe(self._on_exit, event),
                               self._stop_events)).start()
        try:
            await self.pods.synced.wait()
            await self._remove_orphans()
            self.pods.add_handlers(self._on_pod, lambda old, new: self._on_pod(new), self._on_pod_gone)
            background.append(asyncio.create_task(self._sweep_orphans(), name="orphans"))
            await asyncio.gather(*background)
        finally:
            self._stop_events.set()
            for task in background + list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*background, *self.tasks.values(), return_exceptions=True)
            if log_server is not None:
                await log_server.stop()
            await self.client.close()
            await self.heartbeat.close()

    # --- pods --------------------------------------------------------------------------------------

    def _on_pod(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            worker = self.workers[uid] = PodWorker(self.ctx, pod)
            task = self.tasks[uid] = asyncio.create_task(worker.run(), name=f"pod-{uid}")
            task.add_done_callback(lambda _t, uid=uid: self._forget(uid))
        else:
            worker.update(pod)

    def _on_pod_gone(self, pod: dict) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.gone = True
            worker.wake()

    def _forget(self, uid: str) -> None:
        self.workers.pop(uid, None)
        self.tasks.pop(uid, None)

    def _on_exit(self, event: dict) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        worker = self.workers.get(attributes.get(LABEL_UID, ""))
        if worker is not None:
            worker.wake()

    async def _remove_orphans(self) -> None:
        """Podman pods of kfab whose Kubernetes pod is not bound to this node any more."""
        bound = {p["metadata"]["uid"] for p in self.pods.list()}
        for sandbox in await self.runtime.list_pods():
            uid = (sandbox.get("Labels") or {}).get(LABEL_UID)
            if uid and uid not in bound and uid not in self.workers:
                log.info("removing Podman pod %s: its pod is no longer bound here", sandbox.get("Name"))
                try:
                    await self.runtime.remove_pod(sandbox["Id"])
                except RuntimeError_ as e:
                    # One pod Podman cannot remove (e.g. made under another cgroup manager) must not stop the
                    # agent from starting: the next sweep tries again.
                    log.warning("%s", e)
                    continue
                self.ctx.volumes.remove(uid)
        # Volumes of pods that went while no agent ran (never of a Podman pod still there); network volumes no
        # pod here uses any more.
        sandboxes = {(s.get("Labels") or {}).get(LABEL_UID) for s in await self.runtime.list_pods()}
        await self.ctx.volumes.reconcile(bound | set(self.workers) | sandboxes)

    async def _sweep_orphans(self) -> None:
        while True:
            await asyncio.sleep(ORPHAN_SWEEP)
            try:
                await self._remove_orphans()
            except Exception as e:  # noqa: BLE001 - Podman restarting: next sweep
                log.warning("orphan sweep failed: %s", e)


def run_agent(config: AgentConfig, verbose: bool = False) -> int:
    """`kfab node`: the agent in the foreground until SIGTERM/SIGINT; exit code 2 for a bad kubeconfig."""
    setup_logging(verbose, verbose_level=logging.DEBUG, quiet_level=logging.INFO)
    try:
        agent = NodeAgent(config)
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    return run_until_signal(agent.run())
