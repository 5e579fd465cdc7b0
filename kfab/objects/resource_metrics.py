"""The kubelet's resource metrics (`/metrics/resource`, Prometheus text), as node agents serve them and the API
server's metrics provider reads them (what metrics-server scrapes from every kubelet):

    node_cpu_usage_seconds_total 1234.5 1700000000000
    node_memory_working_set_bytes 5.3e+08 1700000000000
    container_cpu_usage_seconds_total{container="web",namespace="default",pod="web-1"} 3.2 1700000000000
    container_memory_working_set_bytes{container="web",namespace="default",pod="web-1"} 2.1e+07 1700000000000

CPU is a cumulative counter of CPU seconds; the provider turns two scrapes into a rate (cores). Memory is the
working set at the sample's time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

_HELP = {
    "node_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "Current working set of the node in bytes"),
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the container in core-seconds"),
    "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
}


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # cumulative
    memory_bytes: int
    timestamp: float  # seconds since the epoch


@dataclass
class NodeSample:
    node: Usage | None = None
    containers: dict[tuple[str, str, str], Usage] = field(default_factory=dict)  # (namespace, pod, container)


def render(sample: NodeSample) -> str:
    lines: list[str] = []

    def family(name: str, rows: list[tuple[str, float, float]]) -> None:
        kind, text = _HELP[name]
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value!r} {int(ts * 1000)}" for labels, value, ts in rows)

    if sample.node is not None:
        family("node_cpu_usage_seconds_total", [("", sample.node.cpu_seconds, sample.node.timestamp)])
        family("node_memory_working_set_bytes", [("", float(sample.node.memory_bytes), sample.node.timestamp)])
    keys = sorted(sample.containers)
    label = {k: f'{{container="{k[2]}",namespace="{k[0]}",pod="{k[1]}"}}' for k in keys}
    family("container_cpu_usage_seconds_total",
           [(label[k], sample.containers[k].cpu_seconds, sample.containers[k].timestamp) for k in keys])
    family("container_memory_working_set_bytes",
           [(label[k], float(sample.containers[k].memory_bytes), sample.containers[k].timestamp) for k in keys])
    return "\n".join(lines) + "\n"


def parse(text: str) -> NodeSample:
    node_cpu = node_mem = None
    cpu: dict[tuple[str, str, str], tuple[float, float]] = {}
    mem: dict[tuple[str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            ts = s.timestamp or 0.0
            if s.name == "node_cpu_usage_seconds_total":
                node_cpu = (s.value, ts)
            elif s.name == "node_memory_working_set_bytes":
                node_mem = s.value
            elif s.name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes"):
                key = (s.labels.get("namespace", ""), s.labels.get("pod", ""), s.labels.get("container", ""))
                if s.name.startswith("container_cpu"):
                    cpu[key] = (s.value, ts)
                else:
                    mem[key] = s.value
    sample = NodeSample()
    if node_cpu is not None:
        sample.node = Usage(node_cpu[0], int(node_mem or 0), float(node_cpu[1]))
    for key, (value, ts) in cpu.items():
        sample.containers[key] = Usage(value, int(mem.get(key, 0)), float(ts))
    return sample
