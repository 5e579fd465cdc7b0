"""The node's Node object (capacity, addresses, nodeInfo, conditions), its Lease, and its podCIDR.

podCIDR: a Node controller that allocates podCIDRs (kube-controller-manager's nodeipam) may set
`spec.podCIDR`; when none does, the agent claims one /24 of the cluster CIDR itself, race-safely: a claim is
a Lease `podcidr-10.244.N.0-24` in kube-node-lease created with the node as holder — the API's create is
atomic, so of two nodes racing for one /24 exactly one create succeeds and the other tries the next. A node
finds its own claim again after a restart (same holder), so its pods keep their subnet.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import platform
import shutil
from pathlib import Path

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import spec_of

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
# Renewed four times per node-monitor grace period that kfab up installs (10 s): one or two late renewals are no
# node failure, three are (upstream's kubelet renews every 10 s against a 50 s grace period).
LEASE_RENEW = 2.5
# The heartbeat has a client of its own, as the kubelet's: a renewal sent on a connection to an API server that died
# (or to the virtual IP's old holder) would wait ~10 s for TCP to give up (client.DEAD_PEER_TIMEOUT_MS), most of the
# grace period. Its requests give up after HEARTBEAT_TIMEOUT instead, and a failure drops its connections (the
# kubelet's closeAllConns) so that the next try, HEARTBEAT_RETRY later and backing off to LEASE_RENEW, connects
# afresh: to whoever holds the address by then.
HEARTBEAT_TIMEOUT = 4.0
HEARTBEAT_RETRY = 0.2
STATUS_EVERY = 10.0
CLAIM_LABEL = "kfab.io/podcidr-claim"
AGENT_VERSION = "v1.37.0-kfab"


def micro_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0])
    return out


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def capacity(root: str = "/var/lib") -> dict[str, str]:
    disk = shutil.disk_usage(root if os.path.exists(root) else "/")
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{meminfo().get('MemTotal', 0)}Ki", "pods": "110",
            "ephemeral-storage": f"{disk.total // 1024}Ki"}


def pressure() -> dict[str, bool]:
    mem = meminfo()
    disk = shutil.disk_usage("/")
    # kubelet's default hard eviction thresholds: memory.available<100Mi, nodefs.available<10%.
    return {"MemoryPressure": mem.get("MemAvailable", 1 << 30) < 100 * 1024,
            "DiskPressure": disk.free < disk.total * 0.10}


def conditions(previous: list[dict], ready: bool = True) -> list[dict]:
    now = _now()
    wanted = [("Ready", ready, "KubeletReady", "kfab node agent is posting ready status")]
    reasons = {"MemoryPressure": ("KubeletHasSufficientMemory", "KubeletHasInsufficientMemory"),
               "DiskPressure": ("KubeletHasNoDiskPressure", "KubeletHasDiskPressure")}
    for kind, under in pressure().items():
        what = kind.replace("Pressure", "").lower()
        wanted.append((kind, under, reasons[kind][under],
                       f"kfab node agent has {'' if under else 'no '}{what} pressure"))
    wanted.append(("PIDPressure", False, "KubeletHasSufficientPID", "kfab node agent has sufficient PID available"))
    old = {c.get("type"): c for c in previous}
    out = []
    for kind, value, reason, message in wanted:
        status = "True" if value else "False"
        prior = old.get(kind) or {}
        changed = prior.get("status") != status
        out.append({"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now if changed else prior.get("lastTransitionTime", now)})
    return out


def heartbeat_client(kubeconfig, name: str) -> Client:
    """The client a node agent's heartbeats use (see HEARTBEAT_TIMEOUT)."""
    return Client.from_kubeconfig(kubeconfig, user_agent=f"kfab-node/{name} (heartbeat)", pool_size=2,
                                  request_timeout=HEARTBEAT_TIMEOUT)


async def beat_every(client: Client, beat, what: str) -> None:
    """`await beat()` every LEASE_RENEW seconds until cancelled; after a failure, drop `client`'s connections and
    try again soon (HEARTBEAT_RETRY, doubling up to LEASE_RENEW)."""
    retry = HEARTBEAT_RETRY
    while True:
        try:
            await beat()
            delay, retry = LEASE_RENEW, HEARTBEAT_RETRY
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the API server may be restarting or gone: keep trying
            log.warning("%s failed: %s", what, e or type(e).__name__)
            await client.close()
            delay, retry = retry, min(retry * 2, LEASE_RENEW)
        await asyncio.sleep(delay)


class NodeRegistration:
    def __init__(self, client: Client, name: str, host_ip: str, cluster_cidr: str, port: int,
                 runtime_version: str, heartbeat: Client | None = None):
        self.client, self.name, self.host_ip = client, name, host_ip
        self.heartbeat = heartbeat or client
        self.cluster_cidr = ipaddress.ip_network(cluster_cidr)
        self.port = port
        self.runtime_version = runtime_version
        self.pod_cidr: str | None = None
        self.node: dict | None = None

    def _node_info(self) -> dict:
        uname = platform.uname()
        return {"machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": uname.release,
                "osImage": os_image(), "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": AGENT_VERSION, "kubeProxyVersion": AGENT_VERSION,
                "operatingSystem": "linux", "architecture": {"x86_64": "amd64", "aarch64": "arm64"}
                .get(uname.machine, uname.machine)}

    def _status(self, previous: dict | None) -> dict:
        cap = capacity()
        return {"capacity": cap, "allocatable": dict(cap),
                "addresses": [{"type": "InternalIP", "address": self.host_ip},
                              {"type": "Hostname", "address": self.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "nodeInfo": self._node_info(),
                "conditions": conditions((previous or {}).get("conditions") or [])}

    async def register(self) -> dict:
        """Create the Node, or take over the one already there (an agent restart); then its podCIDR."""
        nodes = rt_of("Node")
        body = {"metadata": {"name": self.name, "labels": {
            "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self._node_info()["architecture"]}}, "spec": {}}
        try:
            node = await self.client.create(nodes, body)
        except APIStatusError as e:
            if not e.already_exists:
                raise
            node = await self.client.get(nodes, None, self.name)
        self.pod_cidr = spec_of(node).get("podCIDR") or await self._claim_cidr()
        if not spec_of(node).get("podCIDR"):
            node = await self.client.patch(nodes, None, self.name,
                                           {"spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}})
        self.node = await self.client.patch(nodes, None, self.name, {"status": self._status(node.get("status"))},
                                            "merge", subresource="status")
        return self.node

    async def _claim_cidr(self) -> str:
        leases = rt_of("Lease", "coordination.k8s.io/v1")
        existing = (await self.client.list(leases, LEASE_NAMESPACE, label_selector=CLAIM_LABEL))["items"]
        taken = set()
        for lease in existing:
            cidr = (lease["metadata"].get("annotations") or {}).get(CLAIM_LABEL)
            if spec_of(lease).get("holderIdentity") == self.name and cidr:
                return cidr
            taken.add(cidr)
        for subnet in self.cluster_cidr.subnets(new_prefix=24):
            cidr = str(subnet)
            if cidr in taken:
                continue
            claim = {"metadata": {"name": f"podcidr-{cidr.replace('/', '-')}", "namespace": LEASE_NAMESPACE,
                                  "labels": {CLAIM_LABEL: "true"}, "annotations": {CLAIM_LABEL: cidr}},
                     "spec": {"holderIdentity": self.name}}
            try:
                await self.client.create(leases, claim)
                log.info("claimed podCIDR %s", cidr)
                return cidr
            except APIStatusError as e:
                if not e.already_exists:
                    raise
        raise RuntimeError(f"no free /24 left in the cluster CIDR {self.cluster_cidr}")

    async def run_heartbeats(self) -> None:
        """Renew the Lease every few seconds and post the Node status (conditions, capacity) regularly."""
        last_status = 0.0
        loop = asyncio.get_running_loop()
        client = self.heartbeat

        async def beat() -> None:
            nonlocal last_status
            await renew_lease(client, self.name)
            if loop.time() - last_status >= STATUS_EVERY:
                node = await client.get(rt_of("Node"), None, self.name)
                self.node = await client.patch(rt_of("Node"), None, self.name,
                                               {"status": self._status(node.get("status"))}, "merge",
                                               subresource="status")
                last_status = loop.time()

        await beat_every(client, beat, "node heartbeat")


async def renew_lease(client: Client, name: str) -> None:
    """One renewal of the node's Lease in kube-node-lease (created when missing)."""
    leases = rt_of("Lease", "coordination.k8s.io/v1")
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": micro_now()}
    try:
        await client.patch(leases, LEASE_NAMESPACE, name, {"spec": spec}, "merge")
    except APIStatusError as e:
        if not e.not_found:
            raise
        await client.create(leases, {"metadata": {"name": name, "namespace": LEASE_NAMESPACE}, "spec": spec})


async def keep_lease(client: Client, name: str) -> None:
    """Renew the Lease until cancelled, while the agent starts (Podman, registration and the pod network take
    long on a loaded host): a restarting agent is no lost node. The kubelet's lease controller also runs beside its
    registration rather than after it."""
    await beat_every(client, lambda: renew_lease(client, name), "node lease renewal")
