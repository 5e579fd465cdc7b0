"""The node agent's resource metrics (the kubelet's `/metrics/resource`): CPU time and memory working set of
the node, from its cgroup (what the host itself accounts, also for a lab host that is a container), and of
every running container of a pod, from Podman's stats (`podman stats --no-stream`, one API call per sample).

"The node's cgroup" is the one the host's init (PID 1) runs in: the root on a machine (cgroup v1; v2 puts init
in /init.scope, whose parent is the root), the container's own cgroup on a host that is a container sharing the
machine's cgroup tree (the lab's hosts, `--cgroupns=host`): there the root would count every process of the
machine, not the host's. The host's pods live below its init's cgroup (Podman under the host's systemd).

The API server's metrics provider (kfab.api.metrics) scrapes this once per resolution.
"""

from __future__ import annotations

import time
from pathlib import Path

from kfab.node.runtime import LABEL_CONTAINER, LABEL_NAME, LABEL_NAMESPACE, PodmanRuntime
from kfab.objects.resource_metrics import NodeSample, Usage

CGROUP = Path("/sys/fs/cgroup")
PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def host_cgroups(proc: Path = PROC) -> dict[str, str]:
    """Controller ("" for cgroup v2) -> the path, relative to the hierarchy's root, of the cgroup the host's init
    runs in ("" for the root itself); systemd's own init.scope stands for its parent (the whole host)."""
    out = {}
    for line in (_read(proc / "1" / "cgroup") or "").splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        path = path.strip().strip("/")
        if path == "init.scope" or path.endswith("/init.scope"):
            path = path[:-len("init.scope")].rstrip("/")
        for controller in controllers.split(","):
            out[controller] = path
    return out


def node_cpu_seconds(cgroup: Path = CGROUP, proc: Path = PROC) -> float:
    """Cumulative CPU seconds of everything on the node: cgroup v2 cpu.stat, cgroup v1 cpuacct, else /proc/stat."""
    own = host_cgroups(proc)
    usage = _keyed(_read(cgroup / own.get("", "") / "cpu.stat")).get("usage_usec")
    if usage is not None:
        return usage / 1e6
    where = own.get("cpuacct", "")
    v1 = (_read(cgroup / "cpuacct" / where / "cpuacct.usage")
          or _read(cgroup / "cpu,cpuacct" / where / "cpuacct.usage"))
    if v1 and v1.strip().isdigit():
        return int(v1) / 1e9
    fields = (_read(proc / "stat") or "cpu 0").splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # user nice system + irq softirq steal (idle, iowait excluded)
    return busy / 100.0  # USER_HZ


def node_working_set(cgroup: Path = CGROUP, proc: Path = PROC) -> int:
    """Bytes in use that the kernel cannot simply drop: usage minus inactive file pages, as the kubelet counts."""
    own = host_cgroups(proc)
    current = _read(cgroup / own.get("", "") / "memory.current")
    if current and current.strip().isdigit():
        return max(0, int(current) - _keyed(_read(cgroup / own.get("", "") / "memory.stat")).get("inactive_file", 0))
    where = cgroup / "memory" / own.get("memory", "")
    v1 = _read(where / "memory.usage_in_bytes")
    limit = _read(where / "memory.limit_in_bytes")
    # The host's own cgroup when it is a container (or a limited one): the root's figure would be the machine's.
    if v1 and v1.strip().isdigit() and (own.get("memory") or (limit and int(limit) < 1 << 60)):
        return max(0, int(v1) - _keyed(_read(where / "memory.stat")).get("total_inactive_file", 0))
    info = {k.rstrip(":"): int(v) * 1024 for k, v, *_ in
            (line.split() for line in (_read(proc / "meminfo") or "").splitlines() if len(line.split()) >= 2)}
    return max(0, info.get("MemTotal", 0) - info.get("MemAvailable", 0))


class ResourceSampler:
    def __init__(self, runtime: PodmanRuntime, cgroup: Path = CGROUP, proc: Path = PROC):
        self.runtime, self.cgroup, self.proc = runtime, cgroup, proc

    async def sample(self) -> NodeSample:
        now = time.time()
        sample = NodeSample(node=Usage(node_cpu_seconds(self.cgroup, self.proc),
                                       node_working_set(self.cgroup, self.proc), now))
        for stats in await self.runtime.container_stats():
            labels = stats.get("Labels") or {}
            key = (labels.get(LABEL_NAMESPACE, ""), labels.get(LABEL_NAME, ""), labels.get(LABEL_CONTAINER, ""))
            if all(key):
                sample.containers[key] = Usage(int(stats.get("CPUNano") or 0) / 1e9, int(stats.get("MemUsage") or 0),
                                               now)
        return sample
