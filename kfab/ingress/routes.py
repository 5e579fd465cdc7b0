"""Ingresses -> one routing table (a pure function, no I/O), matched the way the Ingress API specifies.

- hosts: an exact host wins over a wildcard; `*.example.com` covers exactly one more label
  (`a.example.com`, not `example.com` nor `a.b.example.com`); rules without a host serve every other host;
- paths: the longest match wins; at equal length Exact beats Prefix (and ImplementationSpecific, which this
  controller matches as Prefix, as ingress-nginx does without its regex annotation); Prefix matches whole
  path elements (`/foo` matches `/foo`, `/foo/` and `/foo/bar`, never `/foobar`);
- nothing matched: the oldest Ingress's defaultBackend, else 404;
- the same host + path + pathType in two Ingresses: the oldest Ingress keeps it (ingress-nginx's rule), the
  other is reported as a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from kfab.objects.meta import meta_of, spec_of

CONTROLLER = "kfab.io/ingress"
CLASS_NAME = "kfab"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_TYPE_RANK = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 2}


@dataclass(frozen=True)
class Backend:
    namespace: str
    service: str
    port_number: int | None = None
    port_name: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port_number or self.port_name}"


@dataclass(frozen=True)
class Route:
    path: str
    path_type: str
    backend: Backend | None     # None: a resource backend this controller cannot serve (503)
    ingress: str                # namespace/name that defined it


@dataclass
class Conflict:
    ingress: str
    message: str


@dataclass
class RouteTable:
    hosts: dict[str, list[Route]] = field(default_factory=dict)       # exact host -> routes, best first
    wildcards: dict[str, list[Route]] = field(default_factory=dict)   # "example.com" for "*.example.com"
    any_host: list[Route] = field(default_factory=list)
    default_backend: Backend | None = None
    tls: dict[str, tuple[str, str]] = field(default_factory=dict)     # host -> (namespace, secret name)
    tls_wildcards: dict[str, tuple[str, str]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    def routes_for(self, host: str) -> list[Route]:
        host = normalize_host(host)
        if host in self.hosts:
            return self.hosts[host]
        parent = host.partition(".")[2]
        if parent and parent in self.wildcards:
            return self.wildcards[parent]
        return self.any_host

    def match(self, host: str, path: str) -> tuple[Route | None, Backend | None]:
        """(the route that matched or None, the backend to send to or None for 404)."""
        for route in self.routes_for(host):
            if path_matches(route.path_type, route.path, path):
                return route, route.backend
        return None, self.default_backend

    def tls_secret(self, host: str) -> tuple[str, str] | None:
        host = normalize_host(host)
        if host in self.tls:
            return self.tls[host]
        return self.tls_wildcards.get(host.partition(".")[2])


def normalize_host(host: str) -> str:
    """Lower case, without a port and a trailing dot (`Web.Example.com:80.` -> `web.example.com`)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def path_matches(path_type: str, route_path: str, path: str) -> bool:
    if path_type == "Exact":
        return path == route_path
    prefix = route_path.rstrip("/")
    if not prefix:
        return True                       # "/" (or "" for ImplementationSpecific) matches every path
    return path == prefix or path.startswith(prefix + "/")


def _sort_key(route: Route) -> tuple:
    return (-len(route.path.rstrip("/") if route.path_type != "Exact" else route.path),
            _TYPE_RANK.get(route.path_type, 3))


def _backend(namespace: str, spec: dict | None) -> Backend | None:
    service = (spec or {}).get("service")
    if not service:
        return None
    port = service.get("port") or {}
    return Backend(namespace, service.get("name", ""), port.get("number") or None, port.get("name") or None)


def ingress_class_of(ingress: dict) -> str | None:
    annotations = meta_of(ingress).get("annotations") or {}
    return spec_of(ingress).get("ingressClassName") or annotations.get(CLASS_ANNOTATION)


def ours(ingress: dict, class_names: set[str]) -> bool:
    """Ingresses of one of our classes; one with no class at all too when one of our classes is the default
    (the admission plugin fills the class in for new ones; older ones may have none)."""
    name = ingress_class_of(ingress)
    return name in class_names if name else "" in class_names


def _age(ingress: dict) -> tuple[str, str, str]:
    meta = meta_of(ingress)
    return meta.get("creationTimestamp") or "", meta.get("namespace", ""), meta.get("name", "")


def build_routes(ingresses: list[dict]) -> RouteTable:
    """The routing table of these Ingresses (already filtered to this controller's classes)."""
    table = RouteTable()
    seen: dict[tuple[str, str, str], str] = {}
    for ingress in sorted(ingresses, key=_age):
        meta, spec = meta_of(ingress), spec_of(ingress)
        ns, key = meta.get("namespace", ""), f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if spec.get("defaultBackend") and table.default_backend is None:
            table.default_backend = _backend(ns, spec["defaultBackend"])
        for rule in spec.get("rules") or []:
            host = normalize_host(rule.get("host") or "")
            for p in ((rule.get("http") or {}).get("paths") or []):
                path_type = p.get("pathType") or "ImplementationSpecific"
                path = p.get("path") or "/"
                claim = (host, path, path_type)
                if claim in seen:
                    table.conflicts.append(Conflict(key, f"host {host or '*'!r} path {path!r} ({path_type}) is "
                                                         f"already defined in ingress {seen[claim]}"))
                    continue
                seen[claim] = key
                route = Route(path, path_type, _backend(ns, p.get("backend")), key)
                if not host:
                    table.any_host.append(route)
                elif host.startswith("*."):
                    table.wildcards.setdefault(host[2:], []).append(route)
                else:
                    table.hosts.setdefault(host, []).append(route)
        for tls in spec.get("tls") or []:
            secret = tls.get("secretName")
            if not secret:
                continue
            for host in tls.get("hosts") or []:
                host = normalize_host(host)
                target = table.tls_wildcards if host.startswith("*.") else table.tls
                target.setdefault(host[2:] if host.startswith("*.") else host, (ns, secret))
    for routes in (*table.hosts.values(), *table.wildcards.values(), table.any_host):
        routes.sort(key=_sort_key)
    return table
