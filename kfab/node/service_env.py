"""The environment variables the kubelet gives every container for Services (pkg/kubelet/envvars).

`kubernetes` in namespace default always (so in-cluster clients find the API server through
KUBERNETES_SERVICE_HOST/PORT, as client-go's InClusterConfig and the official Python client read them), and
with `enableServiceLinks` (default true) every Service of the pod's own namespace, in both the
`{NAME}_SERVICE_HOST` form and Docker's link form (`{NAME}_PORT_443_TCP_ADDR`, ...). A container's own
env and envFrom win over these.
"""

from __future__ import annotations

from typing import Iterable

from kfab.objects.meta import meta_of, spec_of

MASTER_SERVICES = ("kubernetes",)
MASTER_NAMESPACE = "default"


def _ip_set(service: dict) -> bool:
    ip = spec_of(service).get("clusterIP")
    return bool(ip) and ip != "None"


def _selected(services: Iterable[dict], namespace: str, enable_links: bool) -> list[dict]:
    """kubelet's getServiceEnvVarMap: the master Services from namespace default, and with links on the
    pod's namespace's Services (a Service of the pod's namespace with a master name takes precedence)."""
    chosen: dict[str, dict] = {}
    for svc in services:
        if not _ip_set(svc):
            continue
        meta = meta_of(svc)
        name, ns = meta.get("name", ""), meta.get("namespace")
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_links:
            chosen[name] = svc
    return [chosen[name] for name in sorted(chosen)]


def _vars_of(service: dict) -> dict[str, str]:
    """kubelet's FromServices for one Service."""
    name = meta_of(service)["name"].upper().replace("-", "_")
    spec = spec_of(service)
    ip, ports = spec["clusterIP"], spec.get("ports") or []
    out = {f"{name}_SERVICE_HOST": ip}
    if not ports:
        return out
    out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
    for port in ports:
        if port.get("name"):
            out[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
    host = f"[{ip}]" if ":" in ip else ip   # Go's net.JoinHostPort
    for i, port in enumerate(ports):
        protocol = port.get("protocol") or "TCP"
        url = f"{protocol.lower()}://{host}:{port['port']}"
        if i == 0:   # Docker special-cases the first port
            out[f"{name}_PORT"] = url
        prefix = f"{name}_PORT_{port['port']}_{protocol.upper()}"
        out[prefix] = url
        out[f"{prefix}_PROTO"] = protocol.lower()
        out[f"{prefix}_PORT"] = str(port["port"])
        out[f"{prefix}_ADDR"] = ip
    return out


def service_env(services: Iterable[dict], pod: dict) -> dict[str, str]:
    """Every Service variable a container of `pod` gets, before its own env is applied."""
    enable_links = spec_of(pod).get("enableServiceLinks", True) is not False
    env: dict[str, str] = {}
    for svc in _selected(services, meta_of(pod).get("namespace", ""), enable_links):
        env.update(_vars_of(svc))
    return env
