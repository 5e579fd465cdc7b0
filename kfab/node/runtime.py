"""Podman as the node's container runtime, through the `podman` Python bindings over the Podman API socket.

The bindings are synchronous (requests over a unix socket): every call runs in a worker thread so the agent's
event loop never blocks. One Podman pod per Kubernetes pod, on the node's pod network, so the containers of a
pod share one network namespace and one IP. Every Podman object kfab creates carries labels naming the
Kubernetes pod, which is what lets a restarted agent adopt what is already there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Callable

import podman
from podman.errors import APIError, NotFound

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///run/podman/podman.sock"
LABEL_UID = "kfab.io/pod-uid"
LABEL_NAMESPACE = "kfab.io/pod-namespace"
LABEL_NAME = "kfab.io/pod-name"
LABEL_CONTAINER = "kfab.io/container"
LABEL_ATTEMPT = "kfab.io/attempt"
LABEL_INIT = "kfab.io/init"
PRESENT_TTL = 5.0  # seconds an image seen present is taken as present without asking Podman
CLEANUP_WAIT = 15.0  # seconds a removal waits for the pod's containers' own cleanup to finish


def cleanups_running(container_ids: set[str], proc: Path = Path("/proc")) -> bool:
    """Whether a conmon, or the `podman container cleanup` it starts when a container ends, still runs on this
    host for one of these containers (both name the container's full id on their command line)."""
    wanted = [i.encode() for i in container_ids]
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        if (b"conmon" in text or b"cleanup" in text) and any(i in text for i in wanted):
            return True
    return False


# Podman 4.3 can leave a layer marked incomplete with its rootfs still mounted (a removal that raced the
# container's own cleanup: podman#16882, #17216); from then on every call fails while Podman tries to delete it.
STUCK_LAYER = re.compile(r"unlinkat (/\S+/overlay/[0-9a-f]{64}/merged): device or resource busy")


async def unmount_stuck_layer(message: str) -> bool:
    """When Podman's error is that stuck layer: unmount its rootfs so that Podman's next call deletes the layer.
    True when it was unmounted (the caller tries once more)."""
    found = STUCK_LAYER.search(message)
    if not found:
        return False
    proc = await asyncio.create_subprocess_exec("umount", found.group(1), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        log.error("Podman's storage holds a half-deleted layer and %s cannot be unmounted: %s", found.group(1),
                  err.decode(errors="replace").strip())
        return False
    log.warning("Podman's storage held a half-deleted layer with its rootfs mounted (podman#16882): unmounted %s "
                "so that Podman deletes it", found.group(1))
    return True


def wait_for_cleanups(container_ids: set[str]) -> None:
    """Blocks (in a worker thread) until no cleanup of these containers runs, CLEANUP_WAIT seconds at most."""
    deadline = time.monotonic() + CLEANUP_WAIT
    while cleanups_running(container_ids) and time.monotonic() < deadline:
        time.sleep(0.1)


class RuntimeError_(Exception):
    """Podman refused something; the message is Podman's."""


class ImagePullError(RuntimeError_):
    pass


def _explain(e: Exception) -> str:
    return getattr(e, "explanation", None) or str(e)


class PodmanRuntime:
    def __init__(self, socket_url: str = DEFAULT_SOCKET, concurrency: int = 10):
        self.socket_url = socket_url
        self.client = podman.PodmanClient(base_url=socket_url, timeout=120)
        # Podman calls of many pods at once: asyncio's default pool (cores + 4 threads) would queue them here
        # rather than let Podman work on them concurrently; 10 = the bindings' connection pool size.
        self._pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="podman")
        self._present: dict[str, float] = {}  # image -> when Podman last said it is present

    async def _call(self, fn: Callable, *args, **kwargs):
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except (APIError, RuntimeError_) as e:   # RuntimeError_: a call that put Podman's words in its own
            if not await unmount_stuck_layer(_explain(e)):
                raise
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    # --- host --------------------------------------------------------------------------------------

    async def info(self) -> dict:
        return await self._call(self.client.info)

    async def ensure_network(self, name: str, subnet: str, gateway: str) -> None:
        """The node's pod network: a Podman bridge network whose subnet is the node's podCIDR."""
        def ensure():
            try:
                net = self.client.networks.get(name)
                subnets = [s.get("subnet") for s in net.attrs.get("subnets") or []]
                if subnet in subnets:
                    return
                # The podCIDR changed (a new cluster): the old network must go, with whatever uses it.
                log.warning("pod network %s has subnets %s, want %s: recreating it", name, subnets, subnet)
                net.remove(force=True)
            except NotFound:
                pass
            body = {"name": name, "driver": "bridge", "subnets": [{"subnet": subnet, "gateway": gateway}]}
            # The bindings' networks.create() speaks the Docker IPAM shape; libpod's own create takes subnets.
            self.client.api.post("/networks/create", data=json.dumps(body)).raise_for_status()
        await self._call(ensure)

    # --- images ------------------------------------------------------------------------------------

    async def image_present(self, image: str) -> bool:
        # Many pods of one image start at once (a Deployment scaled up): one Podman call answers them all
        # for a few seconds.
        if time.monotonic() - self._present.get(image, -PRESENT_TTL) < PRESENT_TTL:
            return True
        present = await self._call(self.client.images.exists, image)
        if present:
            self._present[image] = time.monotonic()
        return present

    async def pull(self, image: str) -> None:
        def pull():
            # libpod's pull reports failures inside its 200 stream ({"error": ...}), which the bindings'
            # images.pull() drops: read the stream here.
            try:
                response = self.client.api.post("/images/pull", params={"reference": image, "quiet": True})
            except Exception as e:  # noqa: BLE001 - connection trouble is a pull failure too
                raise ImagePullError(f'failed to pull image "{image}": {e}') from None
            errors = []
            for line in response.text.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict) and (item.get("error")
                                               or item.get("message") and response.status_code >= 400):
                    errors.append(item.get("error") or item.get("message"))
            if response.status_code >= 400 or errors or not self.client.images.exists(image):
                reason = "; ".join(errors) or response.text.strip()[:300] or f"HTTP {response.status_code}"
                raise ImagePullError(f'failed to pull image "{image}": {reason}')
        await self._call(pull)

    # --- pods --------------------------------------------------------------------------------------

    async def list_pods(self) -> list[dict]:
        """Every Podman pod kfab made (any agent generation), as inspect data."""
        def list_():
            out = []
            for p in self.client.pods.list(filters={"label": LABEL_UID}):
                try:
                    p.reload()
                    out.append(p.attrs)
                except NotFound:
                    continue
            return out
        return await self._call(list_)

    async def get_pod(self, name: str) -> dict | None:
        def get():
            try:
                return self.client.pods.get(name).attrs
            except NotFound:
                return None
        return await self._call(get)

    async def create_pod(self, name: str, labels: dict, network: str, hostname: str, **options) -> dict:
        """A new Podman pod, as much of its inspect data as starting it needs (its infra container is named
        `<pod>-infra`, so no inspect is needed to learn its id: the bindings' create() makes one)."""
        def create():
            body = {"name": name, "infra_name": f"{name}-infra", "labels": labels, "hostname": hostname,
                    "netns": {"nsmode": "bridge"}, "Networks": {network: {}}, **options}
            try:
                self.client.api.post("/pods/create", data=json.dumps(body)).raise_for_status()
            except APIError as e:
                raise RuntimeError_(f"podman pod create {name}: {_explain(e)}") from None
            return {"Name": name, "State": "Created", "InfraContainerID": f"{name}-infra"}
        return await self._call(create)

    async def start_sandbox(self, pod: dict, network: str, restart: bool) -> tuple[bool, str | None]:
        """Start the pod's infra container if needed, in one round of calls: (was it running, pod IP).
        With restart=False a stopped infra is left stopped (the caller replaces the sandbox)."""
        def start():
            if restart and pod.get("State") == "Created":
                # A sandbox just made: start its infra straight away, one inspect after (not before) for its IP.
                self.client.api.post(f"/containers/{pod['InfraContainerID']}/start").raise_for_status()
            try:
                infra = self.client.containers.get(pod["InfraContainerID"])
            except NotFound:
                return False, None
            was_running = infra.status == "running"
            if not was_running:
                if not restart:
                    return False, None
                infra.start()
                infra.reload()
            nets = (infra.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            return was_running, (nets.get(network) or {}).get("IPAddress") or None
        return await self._call(start)

    async def pod_ip(self, pod: dict, network: str) -> str | None:
        def ip():
            infra = self.client.containers.get(pod["InfraContainerID"])
            nets = (infra.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            return (nets.get(network) or {}).get("IPAddress") or None
        return await self._call(ip)

    async def remove_pod(self, name_or_id: str) -> None:
        """Stop the pod, let each container's own cleanup finish, then remove it. Podman 4.3 removing a pod
        (`pod rm -f`) while conmon's `podman container cleanup` of one of its containers still runs can leave a
        layer half deleted with its rootfs mounted; from then on every Podman call on the host fails with
        "unlinkat .../merged: device or resource busy" (upstream podman#17216, #11594) — no pod starts or goes
        until someone repairs the host. Seen under load with fuse-overlayfs."""
        def remove():
            try:
                pod = self.client.pods.get(name_or_id)
            except NotFound:
                return
            ids = {c["Id"] for c in pod.attrs.get("Containers") or [] if c.get("Id")}
            try:
                pod.stop(timeout=0)
            except (NotFound, APIError):
                pass   # stopped already, or going: the removal below says what is wrong
            wait_for_cleanups(ids)
            try:
                self.client.pods.remove(name_or_id, force=True)
            except NotFound:
                pass
            except APIError as e:
                raise RuntimeError_(f"podman pod rm {name_or_id}: {_explain(e)}") from None
        await self._call(remove)

    # --- containers --------------------------------------------------------------------------------

    async def pod_containers(self, pod_uid: str) -> list[dict]:
        """Inspect data of every container of one Kubernetes pod (all attempts), infra excluded."""
        def list_():
            out = []
            for c in self.client.containers.list(all=True, filters={"label": f"{LABEL_UID}={pod_uid}"}):
                try:
                    c.reload()
                except NotFound:
                    continue
                if LABEL_CONTAINER in (c.labels or {}):
                    out.append(c.attrs)
            return out
        return await self._call(list_)

    async def container_stats(self) -> list[dict]:
        """Podman's stats of every running container of a Kubernetes pod (`podman stats --no-stream`): cumulative
        CPU time in CPUNano, memory in use in MemUsage, and the container's labels under Labels."""
        def stats():
            running = self.client.containers.list(filters={"label": LABEL_CONTAINER, "status": "running"})
            labels = {c.id: c.labels or {} for c in running}
            if not labels:
                return []
            response = self.client.api.get("/containers/stats", params={"containers": list(labels), "stream": False})
            response.raise_for_status()
            return [dict(s, Labels=labels.get(s.get("ContainerID"), {})) for s in response.json().get("Stats") or []]
        return await self._call(stats)

    async def create_container(self, image: str, **kwargs) -> str:
        def create():
            # The bindings' create() (podman-py 5.8) inspects the new container once more to return it; only
            # its id is needed here, so the same rendered body is posted without that second call.
            body = podman.api.prepare_body(self.client.containers._render_payload({"image": image, **kwargs}))
            try:
                response = self.client.api.post("/containers/create", headers={"content-type": "application/json"},
                                                data=body)
                response.raise_for_status()
            except APIError as e:
                raise RuntimeError_(f"podman create {kwargs.get('name')}: {_explain(e)}") from None
            return response.json()["Id"]
        return await self._call(create)

    async def start_container(self, container_id: str) -> None:
        def start():
            try:
                # The start call alone: the bindings' get() first would add an inspect to every start.
                self.client.api.post(f"/containers/{container_id}/start").raise_for_status()
            except APIError as e:
                raise RuntimeError_(f"podman start: {_explain(e)}") from None
        await self._call(start)

    async def stop_container(self, container_id: str, grace: int) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after `grace` seconds: Podman's own stop."""
        def stop():
            try:
                self.client.containers.get(container_id).stop(timeout=max(0, int(grace)))
            except NotFound:
                pass
            except APIError as e:
                log.info("stop %s: %s", container_id[:12], _explain(e))
        await self._call(stop)

    async def remove_container(self, container_id: str) -> None:
        """An exited container removed once its own cleanup has finished (the race remove_pod explains)."""
        def remove():
            wait_for_cleanups({container_id})
            try:
                self.client.containers.get(container_id).remove(force=True)
            except NotFound:
                pass
        await self._call(remove)

    async def exec(self, container_id: str, command: list[str], timeout: float = 60) -> tuple[int, bytes]:
        """Run a command in a container (exec probes). The podman CLI, not the bindings: their exec_run()
        fails against Podman 4.3 ("conmon bytes \"\": readObjectStart")."""
        proc = await asyncio.create_subprocess_exec("podman", "exec", container_id, *command,
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode, output

    def logs(self, container_id: str, follow: bool, tail: int | None) -> "iter":
        """A blocking iterator of log chunks (run it in a thread)."""
        c = self.client.containers.get(container_id)
        return c.logs(stream=True, follow=follow, tail=tail if tail is not None else "all",
                      stdout=True, stderr=True)

    # --- events ------------------------------------------------------------------------------------

    def watch_exits(self, on_exit: Callable[[dict], None], stop: threading.Event) -> None:
        """Blocking: call `on_exit(event)` for every container of kfab's that dies (Podman's event stream)."""
        while not stop.is_set():
            try:
                client = podman.PodmanClient(base_url=self.socket_url, timeout=None)
                # Podman 4.3 matches a `label` filter only as key=value: kfab's containers are picked out by
                # the caller from the event's attributes.
                filters = {"type": ["container"], "event": ["died"]}
                response = client.api.get("/events", params={"stream": True, "filters": json.dumps(filters)},
                                          stream=True)
                response.raise_for_status()
                # Not the bindings' events(): its iter_lines() reads 512-byte chunks, so an event would
                # wait for the next ones to arrive. chunk_size=None yields bytes as soon as they come.
                buffer = b""
                for chunk in response.iter_content(chunk_size=None):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            on_exit(json.loads(line))
                    if stop.is_set():
                        return
            except Exception as e:  # noqa: BLE001 - the socket restarted: reconnect
                log.info("podman event stream broke (%s): reconnecting", e)
                stop.wait(1.0)
