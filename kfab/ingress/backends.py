"""A Service backend of an Ingress -> the ready pod addresses behind it, read from EndpointSlices.

The Ingress names a Service port by number or by name; EndpointSlices name their ports by the Service port's
name, so a number is first turned into that name through the Service (as ingress-nginx does).
"""

from __future__ import annotations

import itertools

from kfab.ingress.routes import Backend
from kfab.objects.meta import meta_of, spec_of

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def ready_endpoint(endpoint: dict) -> bool:
    # A nil `ready` condition means ready; terminating endpoints take no new connections.
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and not conditions.get("terminating")


def service_port_name(service: dict, backend: Backend) -> str | None:
    """The name ("" for an unnamed port) of the Service port the backend means; None: no such port."""
    for port in spec_of(service).get("ports") or []:
        if (port.get("protocol") or "TCP") != "TCP":
            continue
        if backend.port_number is not None and port.get("port") == backend.port_number:
            return port.get("name") or ""
        if backend.port_name is not None and port.get("name") == backend.port_name:
            return port.get("name") or ""
    return None


def addresses(backend: Backend, service: dict | None, slices: list[dict]) -> list[tuple[str, int]]:
    """(pod IP, target port) of every ready endpoint of the backend; [] when there is none (503)."""
    if service is None:
        return []
    name = service_port_name(service, backend)
    if name is None:
        return []
    found: set[tuple[str, int]] = set()
    for s in slices:
        if (meta_of(s).get("labels") or {}).get(SERVICE_NAME_LABEL) != backend.service:
            continue
        port = next((p for p in s.get("ports") or [] if (p.get("name") or "") == name
                     and (p.get("protocol") or "TCP") == "TCP"), None)
        if port is None or not port.get("port"):
            continue
        for endpoint in s.get("endpoints") or []:
            if ready_endpoint(endpoint):
                found.update((ip, int(port["port"])) for ip in endpoint.get("addresses") or [])
    return sorted(found)


class RoundRobin:
    """The next address of each backend in turn (nginx's default balancing)."""

    def __init__(self) -> None:
        self._counters: dict[Backend, itertools.count] = {}

    def pick(self, backend: Backend, choices: list[tuple[str, int]]) -> tuple[str, int]:
        counter = self._counters.setdefault(backend, itertools.count())
        return choices[next(counter) % len(choices)]
