"""What the scheduler knows about a node: the Node object plus the sum of what the pods on it request.

Pure data, no I/O: the scheduler's cache adds and removes pods (bound ones from the informer, assumed
ones it just decided) and the filters and scores read these sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfab.objects.quantity import QuantityError, int_value, milli_value
from kfab.objects.meta import meta_of, spec_of, status_of

# kube-scheduler's defaults for pods that request nothing, used only when scoring (so that many
# "best effort" pods still spread out instead of all landing on the emptiest-looking node).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

CPU, MEMORY, PODS, EPHEMERAL = "cpu", "memory", "pods", "ephemeral-storage"


def _amount(resource: str, value: object) -> int:
    """CPU in millicores, everything else in whole units (bytes, counts); unparseable counts as 0."""
    try:
        return milli_value(value) if resource == CPU else int_value(value)
    except QuantityError:
        return 0


def _container_requests(container: dict) -> dict[str, int]:
    resources = container.get("resources") or {}
    # A limit without a request means request = limit (the API defaults it so; older objects may lack it).
    merged = dict(resources.get("limits") or {}, **(resources.get("requests") or {}))
    return {name: _amount(name, value) for name, value in merged.items()}


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: max(sum of containers, any one init container) + overhead, as the scheduler counts."""
    spec = spec_of(pod)
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for name, amount in _container_requests(c).items():
            total[name] = total.get(name, 0) + amount
    for c in spec.get("initContainers") or []:
        for name, amount in _container_requests(c).items():
            total[name] = max(total.get(name, 0), amount)
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + _amount(name, value)
    return total


def pod_host_ports(pod: dict) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) of every container port that claims a host port."""
    ports = []
    for c in spec_of(pod).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"])))
    return ports


def pod_owner_uid(pod: dict) -> str | None:
    for ref in meta_of(pod).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


@dataclass(frozen=True)
class PodUsage:
    """The part of a pod the scheduler accounts for on its node."""
    requests: dict[str, int]
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]
    owner_uid: str | None

    @classmethod
    def of(cls, pod: dict) -> "PodUsage":
        req = pod_requests(pod)
        return cls(req, req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST, req.get(MEMORY) or DEFAULT_MEMORY_REQUEST,
                   tuple(pod_host_ports(pod)), pod_owner_uid(pod))


@dataclass
class NodeInfo:
    node: dict
    allocatable: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pod_count: int = 0
    host_ports: dict[tuple[str, str, int], int] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)   # controller uid -> pods of it here
    derived: dict = field(default_factory=dict)             # facts filters compute once per Node version

    def __post_init__(self) -> None:
        self.set_node(self.node)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    def set_node(self, node: dict) -> None:
        self.node = node
        self.derived = {}
        status = status_of(node)
        source = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = {name: _amount(name, value) for name, value in source.items()}

    def add(self, usage: PodUsage) -> None:
        self._apply(usage, 1)

    def remove(self, usage: PodUsage) -> None:
        self._apply(usage, -1)

    def _apply(self, usage: PodUsage, sign: int) -> None:
        for name, amount in usage.requests.items():
            self.requested[name] = self.requested.get(name, 0) + sign * amount
        self.nonzero_cpu += sign * usage.nonzero_cpu
        self.nonzero_memory += sign * usage.nonzero_memory
        self.pod_count += sign
        for port in usage.host_ports:
            self.host_ports[port] = self.host_ports.get(port, 0) + sign
            if self.host_ports[port] <= 0:
                del self.host_ports[port]
        if usage.owner_uid:
            self.owners[usage.owner_uid] = self.owners.get(usage.owner_uid, 0) + sign
            if self.owners[usage.owner_uid] <= 0:
                del self.owners[usage.owner_uid]
