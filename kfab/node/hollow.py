"""Hollow nodes: simulated node agents, as Kubernetes' kubemark, for tests and benchmarks of the control plane.

Each hollow node registers a Node (capacity, allocatable, a pod CIDR, the Ready condition), renews its Lease
in `kube-node-lease` every `lease_interval` seconds, and makes the pods bound to it Running with a pod IP and
containerStatuses - no containers are run. A pod's readinessProbe.initialDelaySeconds is honoured (Ready after
that long), so rollouts see pods that take time to become ready. Pods meant to finish (restartPolicy Never or
OnFailure, e.g. a Job's) exit after a while, as kfab.node.hollow_runs describes. A pod deleted with a grace
period is then removed with grace 0, as a kubelet does once its containers stopped. N nodes share one process
and one pod watch, which is the part of a kubelet the control plane sees.

Each hollow node's number (from which its host IP and pod CIDR follow) comes from one table for the whole
cluster, the ConfigMap kube-system/kfab-hollow-nodes ({node name: number}), written with resourceVersion
checks: two `kfab hollow-node` processes never hand out the same number, and a restarted one gets its old ones.
"""

from __future__ import annotations

import asyncio
import calendar
import ipaddress
import itertools
import logging
import time
from pathlib import Path

from kfab.client import APIStatusError, Client, KubeconfigError, rt_of
from kfab.daemon import run_until_signal, setup_logging
from kfab.machinery.controller import Controller, ControllerContext, now_rfc3339
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import InformerFactory
from kfab.machinery.leader import micro_time
from kfab.node import hollow_runs
from kfab.node.hollow_metrics import HollowMetricsServer, loopback_address
from kfab.objects.meta import spec_of, status_of

log = logging.getLogger(__name__)

NODE = rt_of("Node")
POD = rt_of("Pod")
LEASE = rt_of("Lease", "coordination.k8s.io/v1")
CONFIGMAP = rt_of("ConfigMap")
INDEX_NAMESPACE, INDEX_TABLE = "kube-system", "kfab-hollow-nodes"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40      # kubelet's defaults: lease 40 s, renewed every 10 s
LEASE_INTERVAL = 10.0
STATUS_INTERVAL = 60.0   # Node status heartbeat (kubelet reports at least every 5 min when nothing changes)
CLUSTER_CIDR = ipaddress.ip_network("10.244.0.0/16")
CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
HOLLOW_LABEL = "kfab.io/hollow-node"


def node_conditions(now: str) -> list[dict]:
    def cond(type_: str, status: str, reason: str, message: str) -> dict:
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}
    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")]


class HollowKubelet(Controller):
    """Pods bound to any of this process's hollow nodes -> Running/Ready; terminating ones -> gone."""

    name = "hollow-kubelet"
    workers = 8

    def __init__(self, ctx: ControllerContext, nodes: dict[str, int]):
        self.nodes = dict(nodes)  # name -> the node's number in the cluster (see claim_numbers)
        self._next_ip: dict[str, int] = {name: 2 for name in nodes}
        self._running_since: dict[str, float] = {}  # pod uid -> when its containers (re)started, for finishing pods
        self.loopback = False  # InternalIPs on 127.250.x.y, where the nodes serve resource metrics
        super().__init__(ctx)

    def setup(self) -> None:
        self.pods = self.ctx.informer(POD)
        self.pods.add_handlers(self._pod_event, lambda old, new: self._pod_event(new))

    def _pod_event(self, pod: dict) -> None:
        if spec_of(pod).get("nodeName") in self.nodes:
            self.enqueue_obj(pod)

    def pod_cidr(self, node: str) -> ipaddress.IPv4Network:
        # The cluster CIDR holds 256 /24s: nodes past the 256th share one (only their pod IPs would collide).
        base = int(CLUSTER_CIDR.network_address) + (self.nodes[node] % 256) * 256
        return ipaddress.ip_network(f"{ipaddress.ip_address(base)}/24")

    def host_ip(self, node: str) -> str:
        i = self.nodes[node]
        if self.loopback:
            return loopback_address(i)
        return f"10.250.{i // 250}.{i % 250 + 1}"

    def pods_on(self, node: str) -> list[dict]:
        return [p for p in self.pods.list() if spec_of(p).get("nodeName") == node]

    def _pod_ip(self, node: str) -> str:
        cidr = self.pod_cidr(node)
        n = self._next_ip[node]
        self._next_ip[node] = 2 + (n - 1) % 252  # reuse addresses after .253, as a small IPAM would
        return str(cidr.network_address + n)

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None:
            return None
        meta, spec, status = pod["metadata"], spec_of(pod), status_of(pod)
        if spec.get("nodeName") not in self.nodes:
            return None
        if meta.get("deletionTimestamp"):
            self._running_since.pop(meta["uid"], None)
            # Nothing runs: the containers are "stopped" at once; finish the deletion as a kubelet does.
            try:
                await self.client.delete(POD, meta["namespace"], meta["name"], grace_period_seconds=0, uid=meta["uid"])
            except APIStatusError as e:
                if not (e.not_found or e.code == 409):
                    raise
            return None
        if status.get("phase") in ("Succeeded", "Failed"):
            return None
        run_for = hollow_runs.run_seconds(pod)
        if run_for is not None and status.get("phase") == "Running":
            return await self._finish_run(pod, run_for)
        delay = _readiness_delay(spec)
        started = status.get("startTime")
        ready_at = _epoch(started) + delay if started else time.time() + delay
        want_ready = time.time() >= ready_at
        if status.get("phase") == "Running" and _is_ready(status) == want_ready:
            return None if want_ready else max(0.05, ready_at - time.time())
        if not await self.write_status(self.pods, pod, self._running_status(pod, want_ready)):
            return None
        if run_for is not None:
            self._running_since[meta["uid"]] = time.monotonic()
            return run_for
        return None if want_ready else max(0.05, ready_at - time.time())

    async def _finish_run(self, pod: dict, run_for: float) -> float | None:
        """A pod meant to finish: its containers exit `run_for` seconds after they started (see hollow_runs)."""
        uid = pod["metadata"]["uid"]
        since = self._running_since.setdefault(uid, time.monotonic())  # a restarted process: from now
        left = since + run_for - time.monotonic()
        if left > 0:
            return left
        status = hollow_runs.exited_status(pod, now_rfc3339())
        restarted = status.get("phase") == "Running"
        if restarted:
            self._running_since[uid] = time.monotonic()
        else:
            self._running_since.pop(uid, None)
        if not await self.write_status(self.pods, pod, status):
            return None
        return run_for if restarted else None

    def _running_status(self, pod: dict, ready: bool) -> dict:
        spec, status = spec_of(pod), dict(status_of(pod))
        node = spec["nodeName"]
        now = now_rfc3339()
        start = status.get("startTime") or now
        pod_ip = status.get("podIP") or self._pod_ip(node)
        flag = "True" if ready else "False"
        old_conds = {c.get("type"): c for c in status.get("conditions") or []}

        def cond(type_: str, value: str) -> dict:
            old = old_conds.get(type_) or {}
            since = old.get("lastTransitionTime") if old.get("status") == value else now
            return {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": since or now}

        containers = []
        for c in spec.get("containers") or []:
            containers.append({"name": c.get("name"), "image": c.get("image", ""),
                               "imageID": f"hollow://{c.get('image', '')}",
                               "containerID": f"hollow://{pod['metadata']['uid']}/{c.get('name')}",
                               "ready": ready, "started": True, "restartCount": 0,
                               "state": {"running": {"startedAt": start}}})
        status.update({
            "phase": "Running", "hostIP": self.host_ip(node), "hostIPs": [{"ip": self.host_ip(node)}],
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": start,
            "conditions": [cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"),
                           cond("Ready", flag), cond("ContainersReady", flag), cond("PodScheduled", "True")],
            "containerStatuses": containers,
        })
        return status


def _readiness_delay(spec: dict) -> float:
    delays = [float(((c.get("readinessProbe") or {}).get("initialDelaySeconds")) or 0)
              for c in spec.get("containers") or [] if c.get("readinessProbe")]
    return max(delays, default=0.0)


def _is_ready(status: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _epoch(timestamp: str) -> float:
    return calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))


async def _edit_number_table(client: Client, edit) -> dict[str, str]:
    """Apply edit(table) -> changed? to the cluster's {node name: number} table, retrying on conflicts."""
    while True:
        try:
            table = await client.get(CONFIGMAP, INDEX_NAMESPACE, INDEX_TABLE)
        except APIStatusError as e:
            if not e.not_found:
                raise
            table = None
        data = dict((table or {}).get("data") or {})
        if not edit(data):
            return data
        try:
            if table is None:
                await client.create(CONFIGMAP, {"metadata": {"name": INDEX_TABLE, "namespace": INDEX_NAMESPACE,
                                                             "labels": {HOLLOW_LABEL: "true"}}, "data": data})
            else:
                await client.update(CONFIGMAP, dict(table, data=data))
            return data
        except APIStatusError as e:
            if not (e.conflict or e.already_exists):
                raise  # another hollow-node process wrote first: read again


async def claim_numbers(client: Client, names: list[str]) -> dict[str, int]:
    """Each node's number, unique among every hollow node of the cluster; a name keeps the one it had."""
    def assign(data: dict[str, str]) -> bool:
        taken = {int(v) for v in data.values()}
        free = (i for i in itertools.count() if i not in taken)
        missing = [n for n in names if n not in data]
        for name in missing:
            data[name] = str(next(free))
        return bool(missing)

    data = await _edit_number_table(client, assign)
    return {name: int(data[name]) for name in names}


async def release_numbers(client: Client, names: list[str]) -> None:
    def drop(data: dict[str, str]) -> bool:
        gone = [data.pop(n) for n in names if n in data]
        return bool(gone)

    await _edit_number_table(client, drop)


class HollowNodes:
    """N hollow nodes in one process: Node objects, their Leases, and one HollowKubelet for their pods."""

    def __init__(self, client: Client, numbers: dict[str, int], lease_interval: float = LEASE_INTERVAL,
                 status_interval: float = STATUS_INTERVAL, data_dir: Path | None = None):
        self.client, self.names = client, list(numbers)
        self.lease_interval, self.status_interval = lease_interval, status_interval
        self.informers = InformerFactory(client)
        self.kubelet = HollowKubelet(ControllerContext(client, self.informers, EventRecorder(None)), numbers)
        # With the control plane's data dir (its CA), the nodes serve synthetic resource metrics.
        self.metrics = HollowMetricsServer(data_dir, numbers, self.kubelet.pods_on) if data_dir else None
        self.kubelet.loopback = self.metrics is not None

    def node_object(self, name: str) -> dict:
        cidr = str(self.kubelet.pod_cidr(name))
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                      "kubernetes.io/arch": "amd64", HOLLOW_LABEL: "true"}},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "status": self.node_status(name)}

    def node_status(self, name: str) -> dict:
        now = now_rfc3339()
        return {"capacity": dict(CAPACITY), "allocatable": dict(CAPACITY), "conditions": node_conditions(now),
                "addresses": [{"type": "InternalIP", "address": self.kubelet.host_ip(name)},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.37.0-kfab-hollow", "kubeProxyVersion": "",
                             "operatingSystem": "linux",
                             "architecture": "amd64", "containerRuntimeVersion": "hollow://0", "osImage": "hollow",
                             "kernelVersion": "", "machineID": name, "systemUUID": name, "bootID": name},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.metrics.ports[name] if self.metrics else 10250}}}

    async def register(self, name: str) -> dict:
        """Create the Node, or take over an existing one of that name (a restarted hollow node)."""
        try:
            node = await self.client.create(NODE, self.node_object(name))
        except APIStatusError as e:
            if not e.already_exists:
                raise
            node = await self.client.get(NODE, None, name)
        node["status"] = self.node_status(name)
        return await self.client.update_status(NODE, node)

    async def renew_lease(self, name: str, node_uid: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": micro_time()}
        try:
            lease = await self.client.get(LEASE, LEASE_NAMESPACE, name)
        except APIStatusError as e:
            if not e.not_found:
                raise
            await self.client.create(LEASE, {"metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                                                          "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                                               "name": name, "uid": node_uid}]},
                                             "spec": spec}, LEASE_NAMESPACE)
            return
        lease["spec"] = dict(lease.get("spec") or {}, **spec)
        await self.client.update(LEASE, lease)

    async def _heartbeat(self, name: str, uid: str, offset: float) -> None:
        await asyncio.sleep(offset)  # spread N nodes' writes over the interval
        last_status = time.monotonic()
        while True:
            try:
                await self.renew_lease(name, uid)
                if time.monotonic() - last_status >= self.status_interval:
                    node = await self.client.get(NODE, None, name)
                    node["status"] = dict(node.get("status") or {}, conditions=node_conditions(now_rfc3339()))
                    await self.client.update_status(NODE, node)
                    last_status = time.monotonic()
            except Exception as e:  # noqa: BLE001 - a missed renewal is what a flaky node looks like
                log.info("node %s: heartbeat failed: %s", name, e)
            await asyncio.sleep(self.lease_interval)

    async def run(self) -> None:
        if self.metrics is not None:
            await self.metrics.start()
        nodes = await asyncio.gather(*(self.register(n) for n in self.names))
        log.warning("%d hollow nodes registered: %s ... %s", len(nodes), self.names[0], self.names[-1])
        beats = [asyncio.create_task(self._heartbeat(n["metadata"]["name"], n["metadata"]["uid"],
                                                     self.lease_interval * i / max(1, len(nodes))))
                 for i, n in enumerate(nodes)]
        self.informers.start()
        try:
            await asyncio.gather(self.kubelet.run(), *beats)
        finally:
            for b in beats:
                b.cancel()
            await asyncio.gather(*beats, return_exceptions=True)
            await self.informers.stop()
            if self.metrics is not None:
                await self.metrics.stop()

    async def deregister(self) -> None:
        for name in self.names:
            for rt, ns in ((NODE, None), (LEASE, LEASE_NAMESPACE)):
                try:
                    await self.client.delete(rt, ns, name)
                except APIStatusError as e:
                    if not e.not_found:
                        log.info("deleting %s %s: %s", rt.kind, name, e)
        await release_numbers(self.client, self.names)


async def run_hollow_nodes(kubeconfig, count: int, prefix: str = "hollow-node-", lease_interval: float = LEASE_INTERVAL,
                           delete_on_exit: bool = False, data_dir: Path | None = None) -> None:
    names = [f"{prefix}{i}" for i in range(count)]
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-hollow-node", pool_size=100) as client:
        nodes = HollowNodes(client, await claim_numbers(client, names), lease_interval, data_dir=data_dir)
        try:
            await nodes.run()
        finally:
            if delete_on_exit:
                await asyncio.shield(nodes.deregister())


def run(kubeconfig, count: int, prefix: str, lease_interval: float, delete_on_exit: bool, verbose: bool = False,
        data_dir: Path | None = None) -> int:
    """`kfab hollow-node`: the simulated nodes in the foreground until SIGTERM/SIGINT."""
    setup_logging(verbose)
    return run_until_signal(run_hollow_nodes(kubeconfig, count, prefix, lease_interval, delete_on_exit, data_dir),
                            errors=(KubeconfigError, ValueError, OSError))
