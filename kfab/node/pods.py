"""Pod sync: one worker per pod bound to this node, making Podman match the pod and reporting its status.

`reconcile()` is the kubelet's syncPod in the controller shape: it re-reads what Podman has (containers are
labelled with the pod uid and attempt number), takes the next steps (sandbox, volumes, init containers in order,
containers, restarts with back-off, liveness kills) and writes the status. It assumes nothing about what woke it
(a pod update, a container exit from Podman's event stream, a probe result, a timer), so it is safe to re-run
and to start against Podman state a previous agent left behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from kfab.client import APIStatusError, Client, rt_of
from kfab.dns.resolvconf import pod_dns_settings
from kfab.machinery.informer import Informer
from kfab.node import podstatus as ps
from kfab.node.containers import ContainerConfigError, Lookup, create_args, resolve_env
from kfab.node.probes import ContainerProbes
from kfab.node.runtime import ImagePullError, PodmanRuntime, RuntimeError_
from kfab.node.service_env import service_env
from kfab.node.volumes import PodVolumes, VolumeError
from kfab.objects.meta import spec_of, status_of

log = logging.getLogger(__name__)

RESYNC = 10.0          # re-read Podman and refresh configMap/secret files at least this often
MAX_BACKOFF = 300.0    # kubelet's CrashLoopBackOff cap
BACKOFF_RESET = 600.0  # a container that ran this long restarts without back-off again


@dataclass
class NodeContext:
    """What every pod worker shares; passed in, never global."""
    node_name: str
    host_ip: str
    client: Client
    runtime: PodmanRuntime
    volumes: PodVolumes
    lookup: Lookup
    network: str
    events: object  # kfab.machinery.events.EventRecorder
    sandbox_options: dict = field(default_factory=dict)  # extra Podman pod options from the pod network
    cluster_dns: str | None = None  # the DNS Service IP pods with dnsPolicy ClusterFirst use
    cluster_domain: str = "cluster.local"
    services: Informer | None = None  # every Service, for the containers' Service variables (service_env)


def podman_pod_name(pod: dict) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"


def backoff(attempt: int) -> float:
    return 0.0 if attempt == 0 else min(10.0 * 2 ** (attempt - 1), MAX_BACKOFF)


def pull_policy(container: dict) -> str:
    if container.get("imagePullPolicy"):
        return container["imagePullPolicy"]
    image = container.get("image", "")
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    return "IfNotPresent" if tagged and not image.endswith(":latest") else "Always"


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: dict):
        self.ctx = ctx
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.gone = False          # the pod left the API (or this node): tear down now
        self.done = False
        self._wake = asyncio.Event()
        self.waiting: dict[str, dict] = {}
        self.pull_failures: dict[str, tuple[int, float]] = {}  # image -> (failures, retry at)
        self.probes: dict[str, ContainerProbes] = {}          # Podman container id -> its probes
        self.pod_ip: str | None = None
        self.last_status: dict | None = None
        self.attempt_floor: dict[str, int] = {}
        self.sandbox_broken = False  # container name -> first attempt number in a new sandbox
        self._next = RESYNC
        self._started = False

    def update(self, pod: dict) -> None:
        old, self.pod = self.pod, pod
        # Most updates are this worker's own status writes coming back through the watch: a sync for each
        # would double the Podman calls of every pod start. Only what the user changes wakes the worker.
        if old.get("spec") != pod.get("spec") or \
                old["metadata"].get("deletionTimestamp") != pod["metadata"].get("deletionTimestamp"):
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self.done:
            self._wake.clear()
            try:
                delay = await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the pod's worker alive; the next sync retries
                log.exception("sync of pod %s/%s failed", self.pod["metadata"]["namespace"],
                              self.pod["metadata"]["name"])
                delay = 2.0
            if self.done:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.05, delay))
            except asyncio.TimeoutError:
                pass
        for p in self.probes.values():
            p.stop()

    # --- the sync --------------------------------------------------------------------------------

    async def reconcile(self) -> float:
        pod, rt = self.pod, self.ctx.runtime
        if self.gone:
            await self._remove_sandbox(grace=0)
            self.done = True
            return 0
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate()
            return 0
        self._next = RESYNC
        self._started = False  # set when this sync started a container: the status must re-read Podman
        spec = spec_of(pod)
        if status_of(pod).get("phase") in ("Succeeded", "Failed") and self.last_status is None:
            return RESYNC  # finished before this agent started: nothing to run
        fresh = await self._ensure_sandbox()
        try:
            paths = await self.ctx.volumes.sync(pod, self.pod_ip, self.ctx.host_ip)
        except (VolumeError, ContainerConfigError) as e:
            self._event("Warning", getattr(e, "reason", "FailedMount"), str(e))
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                self.waiting[c["name"]] = {"reason": "ContainerCreating", "message": str(e)}
            await self._report({}, False, False)
            return RESYNC
        by_name = {} if fresh else ps.attempts_by_name(await rt.pod_containers(self.uid))
        init_done, init_failed = await self._sync_init(spec, by_name, paths)
        if init_done and not init_failed and self._phase_is_terminal() is False:
            for c in spec.get("containers") or []:
                await self._sync_container(c, by_name.get(c["name"], []), paths, init=False)
        if fresh or self._started or self.waiting or any(not ps.is_running(a[-1]) for a in by_name.values() if a):
            by_name = ps.attempts_by_name(await rt.pod_containers(self.uid))
        if self._started:
            self._ensure_probes(spec, by_name)
        await self._report(by_name, init_done, init_failed)
        return self._next

    def _phase_is_terminal(self) -> bool:
        return (self.last_status or {}).get("phase") in ("Succeeded", "Failed")

    async def _ensure_sandbox(self) -> bool:
        """Make sure the Podman pod exists with its infra running; sets pod_ip. True when newly made."""
        name = podman_pod_name(self.pod)
        rt = self.ctx.runtime
        sandbox = await rt.get_pod(name)
        if sandbox is not None:
            running, self.pod_ip = await rt.start_sandbox(sandbox, self.ctx.network, restart=False)
            if running and not self.sandbox_broken:
                return False
            # The sandbox died (a host restart). As the kubelet does, make a new one and start the pod's
            # containers again — init containers first — with attempt numbers continuing, so restartCount
            # keeps counting. (Podman 4.3 cannot even restart them in the old pod: its cgroup slice is gone,
            # "runc create failed: invalid slice name".)
            old = ps.attempts_by_name(await rt.pod_containers(self.uid))
            self.attempt_floor = {n: ps.attempt_of(a[-1]) + 1 for n, a in old.items() if a}
            self._event("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await rt.remove_pod(name)
            self.sandbox_broken = False
        labels = {"kfab.io/pod-uid": self.uid, "kfab.io/pod-namespace": self.pod["metadata"]["namespace"],
                  "kfab.io/pod-name": self.pod["metadata"]["name"]}
        hostname = spec_of(self.pod).get("hostname") or self.pod["metadata"]["name"]
        options = {**self.ctx.sandbox_options,
                   **pod_dns_settings(self.pod, self.ctx.cluster_dns, self.ctx.cluster_domain)}
        sandbox = await rt.create_pod(name, labels, self.ctx.network, hostname[:63], **options)
        _, self.pod_ip = await rt.start_sandbox(sandbox, self.ctx.network, restart=True)
        return True

    async def _sync_init(self, spec: dict, by_name: dict, paths: dict) -> tuple[bool, bool]:
        policy = spec.get("restartPolicy", "Always")
        for c in spec.get("initContainers") or []:
            attempts = by_name.get(c["name"], [])
            latest = attempts[-1] if attempts else None
            if latest is not None and ps.has_exited(latest) and ps.exit_code(latest) == 0:
                continue
            if latest is not None and ps.is_running(latest):
                return False, False
            if latest is not None and ps.has_exited(latest):
                if policy == "Never":
                    return False, True
                await self._restart(c, latest, paths, init=True)
                return False, False
            await self._start(c, self.attempt_floor.get(c["name"], 0), paths, init=True)
            return False, False
        return True, False

    async def _sync_container(self, c: dict, attempts: list[dict], paths: dict, init: bool) -> None:
        latest = attempts[-1] if attempts else None
        if latest is None:
            await self._start(c, self.attempt_floor.get(c["name"], 0), paths, init)
            return
        cid = latest["Id"]
        if ps.is_running(latest):
            probes = self._probes_of(c, latest)
            if not probes.live:
                self._event("Normal", "Killing", f"Container {c['name']} failed liveness probe, will be restarted")
                probes.stop()
                await self.ctx.runtime.stop_container(cid, self._grace())
            return
        if not ps.has_exited(latest):  # created but never started (an agent stopped between create and start)
            try:
                await self.ctx.runtime.start_container(cid)
            except RuntimeError_ as e:
                self._start_failed(c["name"], e)
            return
        self._forget_probes(c["name"])
        policy = spec_of(self.pod).get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and ps.exit_code(latest) != 0):
            await self._restart(c, latest, paths, init)

    async def _restart(self, c: dict, latest: dict, paths: dict, init: bool) -> None:
        attempt = ps.attempt_of(latest)
        state = latest.get("State") or {}
        started, finished = ps.parse_time(state.get("StartedAt")), ps.parse_time(state.get("FinishedAt"))
        ran = (finished - started).total_seconds() if started and finished else 0
        delay = 0.0 if ran >= BACKOFF_RESET else backoff(attempt)
        finished_at = finished.timestamp() if finished else time.time()
        remaining = finished_at + delay - time.time()
        if remaining > 0:
            self.waiting[c["name"]] = {"reason": "CrashLoopBackOff", "message":
                                       f"back-off {int(delay)}s restarting failed container={c['name']} "
                                       f"pod={self.pod['metadata']['name']}_{self.pod['metadata']['namespace']}"}
            self._next = min(self._next, remaining)
            return
        if await self._start(c, attempt + 1, paths, init):
            # Keep the attempt just finished (for `kubectl logs --previous`), drop older ones.
            for old in (await self.ctx.runtime.pod_containers(self.uid)):
                labels = (old.get("Config") or {}).get("Labels") or {}
                if labels.get("kfab.io/container") == c["name"] and ps.attempt_of(old) < attempt:
                    await self.ctx.runtime.remove_container(old["Id"])

    async def _start(self, c: dict, attempt: int, paths: dict, init: bool) -> bool:
        name, image, rt = c["name"], c.get("image", ""), self.ctx.runtime
        if not await self._ensure_image(c):
            return False
        try:
            env = await resolve_env(self.pod, c, self.ctx.lookup, self.pod_ip, self.ctx.host_ip,
                                    base=await self._service_env())
            mounts = self.ctx.volumes.mounts(c, paths)
        except (ContainerConfigError, VolumeError) as e:
            self.waiting[name] = {"reason": "CreateContainerConfigError", "message": str(e)}
            self._event("Warning", "Failed", f"Error: {e}")
            self._next = min(self._next, 5.0)
            return False
        kwargs = create_args(self.pod, c, podman_pod=podman_pod_name(self.pod), env=env, mounts=mounts,
                             attempt=attempt, init=init)
        try:
            cid = await rt.create_container(image, **kwargs)
            await rt.start_container(cid)
        except RuntimeError_ as e:
            self._start_failed(name, e)
            return False
        self.waiting.pop(name, None)
        self._started = True
        self._event("Normal", "Started", f"Started container {name}")
        return True

    async def _service_env(self) -> dict[str, str]:
        services = self.ctx.services
        if services is None:
            return {}
        if not services.synced.is_set():   # the kubelet's words: a container started now would miss them
            raise ContainerConfigError("services have not yet been read at least once, cannot construct envvars")
        return service_env(services.list(), self.pod)

    def _start_failed(self, name: str, e: Exception) -> None:
        if "slice" in str(e) or "cgroup" in str(e):
            self.sandbox_broken = True  # an old sandbox whose cgroup is gone (infra restarted after a reboot)
        self.waiting[name] = {"reason": "RunContainerError", "message": str(e)}
        self._event("Warning", "Failed", f"Error: {e}")
        self._next = min(self._next, 2.0)

    async def _ensure_image(self, c: dict) -> bool:
        name, image, rt = c["name"], c.get("image", ""), self.ctx.runtime
        policy = pull_policy(c)
        failures, retry_at = self.pull_failures.get(image, (0, 0.0))
        if time.time() < retry_at:
            self.waiting[name] = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            self._next = min(self._next, retry_at - time.time())
            return False
        present = await rt.image_present(image)
        if policy == "Never" and not present:
            self.waiting[name] = {"reason": "ErrImageNeverPull", "message":
                                  f'Container image "{image}" is not present with pull policy of Never'}
            self._event("Warning", "ErrImageNeverPull", self.waiting[name]["message"])
            return False
        if policy == "Always" or not present:
            try:
                await rt.pull(image)
            except ImagePullError as e:
                failures += 1
                self.pull_failures[image] = (failures, time.time() + backoff(failures))
                self.waiting[name] = {"reason": "ErrImagePull", "message": str(e)}
                self._event("Warning", "Failed", str(e))
                self._next = min(self._next, max(0.5, backoff(failures)))
                return False
            self.pull_failures.pop(image, None)
        return True

    def _probes_of(self, c: dict, latest: dict) -> ContainerProbes:
        """The probes of container `c`'s running attempt `latest`, started when it has none yet."""
        cid = latest["Id"]
        probes = self.probes.get(cid)
        if probes is None:
            self._forget_probes(c["name"])
            probes = self.probes[cid] = ContainerProbes(c, self.pod_ip,
                                                        lambda cmd, cid=cid: self.ctx.runtime.exec(cid, cmd),
                                                        self.wake)
            probes.start()
        return probes

    def _ensure_probes(self, spec: dict, by_name: dict) -> None:
        """Probes for the containers this sync started, as the kubelet's prober starts them with the container:
        left to the next sync they began up to RESYNC (10 s) later, and a pod with a readiness probe became Ready
        that much after its start (the HA lab's node-loss test: Running -> Ready 10.7 s)."""
        for c in spec.get("containers") or []:
            attempts = by_name.get(c["name"])
            if attempts and ps.is_running(attempts[-1]):
                self._probes_of(c, attempts[-1])

    def _forget_probes(self, name: str) -> None:
        for cid, p in list(self.probes.items()):
            if p.container["name"] == name:
                p.stop()
                del self.probes[cid]

    def _grace(self) -> int:
        meta, spec = self.pod["metadata"], spec_of(self.pod)
        value = meta.get("deletionGracePeriodSeconds")
        return int(value if value is not None else spec.get("terminationGracePeriodSeconds", 30))

    # --- deletion ----------------------------------------------------------------------------------

    async def _terminate(self) -> None:
        """Graceful delete: SIGTERM, wait the grace period, SIGKILL; then finalize the API delete."""
        grace = self._grace()
        for p in self.probes.values():
            p.stop()
        running = [c for c in await self.ctx.runtime.pod_containers(self.uid) if ps.is_running(c)]
        if running:
            self._event("Normal", "Killing", f"Stopping {len(running)} container(s) (grace period {grace}s)")
        await asyncio.gather(*(self.ctx.runtime.stop_container(c["Id"], grace) for c in running))
        await self._remove_sandbox(grace=0)
        meta = self.pod["metadata"]
        try:
            await self.ctx.client.delete(rt_of("Pod"), meta["namespace"], meta["name"], grace_period_seconds=0,
                                         uid=self.uid)
        except APIStatusError as e:
            if e.code not in (404, 409):
                raise
        self.done = True

    async def _remove_sandbox(self, grace: int) -> None:
        await self.ctx.runtime.remove_pod(podman_pod_name(self.pod))
        self.ctx.volumes.remove(self.uid)

    # --- status ------------------------------------------------------------------------------------

    async def _report(self, by_name: dict, init_done: bool, init_failed: bool) -> None:
        pod, spec = self.pod, spec_of(self.pod)
        old = status_of(pod)

        def statuses(containers: list[dict]) -> list[dict]:
            out = []
            for c in containers:
                attempts = by_name.get(c["name"], [])
                probes = self.probes.get(attempts[-1]["Id"]) if attempts else None
                # Before this attempt's probes exist (it was started in this very sync) it is what they start
                # as: not ready while a readiness probe has not passed (the kubelet's rule), else a Service
                # would send to it for a moment and take it away again when the probes begin.
                ready = probes.ready if probes else "readinessProbe" not in c
                started = probes.started if probes else "startupProbe" not in c
                waiting = self.waiting.get(c["name"])
                if waiting and attempts and ps.is_running(attempts[-1]):
                    waiting = None
                out.append(ps.container_status(c, attempts, waiting, ready, started))
            return out

        init_statuses = statuses(spec.get("initContainers") or [])
        for s in init_statuses:  # a finished init container is "ready" in the kubelet's reporting
            if (s["state"].get("terminated") or {}).get("exitCode") == 0:
                s["ready"] = True
        main = statuses(spec.get("containers") or [])
        phase = ps.phase(pod, init_done, init_failed, main) if by_name or init_failed else "Pending"
        all_ready = init_done and bool(main) and all(s["ready"] for s in main) and phase == "Running"
        previous = old.get("conditions") or []
        conditions = [
            ps.condition(previous, "PodReadyToStartContainers", self.pod_ip is not None),
            ps.condition(previous, "Initialized", init_done, "ContainersNotInitialized"),
            ps.condition(previous, "Ready", all_ready, "ContainersNotReady"),
            ps.condition(previous, "ContainersReady", all_ready, "ContainersNotReady"),
            ps.condition(previous, "PodScheduled", True),
        ]
        status = {"phase": phase, "conditions": conditions, "hostIP": self.ctx.host_ip,
                  "hostIPs": [{"ip": self.ctx.host_ip}], "startTime": old.get("startTime") or ps.now(),
                  "containerStatuses": main}
        if self.pod_ip:
            status["podIP"], status["podIPs"] = self.pod_ip, [{"ip": self.pod_ip}]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if old.get("qosClass"):
            status["qosClass"] = old["qosClass"]
        if status == self.last_status:
            return
        meta = pod["metadata"]
        try:
            await self.ctx.client.patch(rt_of("Pod"), meta["namespace"], meta["name"], {"status": status},
                                        "merge", subresource="status")
            self.last_status = status
        except APIStatusError as e:
            if e.code != 404:
                raise

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.ctx.events.record(self.pod, type_, reason, message, "kubelet")
