"""Kubernetes resource paths -> what the request is about (resource type, namespace, name, subresource, verb).

The shapes, after `/api/v1/` or `/apis/<group>/<version>/`:

    <plural>                                  cluster-scoped collection, or all namespaces of a namespaced kind
    <plural>/<name>[/<subresource>]           cluster-scoped object
    namespaces/<ns>/<plural>                  namespaced collection
    namespaces/<ns>/<plural>/<name>[/<sub>]   namespaced object
    watch/...                                 the deprecated watch prefix on any of the above

`namespaces/<name>/status` and `namespaces/<name>/finalize` are Namespace subresources, not a collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY, ResourceRegistry, ResourceType


@dataclass(frozen=True)
class ResourcePath:
    rt: ResourceType
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch_prefix: bool = False  # /watch/ in the path: a watch whatever the query says

    @property
    def is_collection(self) -> bool:
        return self.name is None


def not_found_path(path: str = "") -> APIError:
    # kube-apiserver's wording for a path no resource lives at
    return APIError(404, "NotFound", "the server could not find the requested resource")


def parse_resource_path(group: str, version: str, tail: str,
                        registry: ResourceRegistry = REGISTRY) -> ResourcePath:
    """Raises APIError 404 when the path names no resource kfab serves."""
    parts = [p for p in tail.split("/")]
    if parts and parts[-1] == "":
        parts.pop()
    if any(p == "" for p in parts) or not parts:
        raise not_found_path()
    watch_prefix = parts[0] == "watch"
    if watch_prefix:
        parts = parts[1:]
        if not parts:
            raise not_found_path()

    namespace = None
    if parts[0] == "namespaces" and len(parts) >= 3 and not (
            len(parts) == 3 and parts[2] in _namespace_subresources(registry)):
        namespace, parts = parts[1], parts[2:]

    plural, rest = parts[0], parts[1:]
    rt = registry.by_path(group, version, plural)
    if rt is None or len(rest) > 2:
        raise not_found_path()
    if namespace is not None and not rt.namespaced:
        raise not_found_path()
    name = rest[0] if rest else None
    subresource = rest[1] if len(rest) > 1 else None
    if rt.namespaced and namespace is None and name is not None:
        raise not_found_path()  # a namespaced object is only addressable inside its namespace
    if subresource is not None and subresource not in rt.subresources:
        raise not_found_path()
    if watch_prefix and subresource is not None:
        raise not_found_path()
    return ResourcePath(rt, namespace, name, subresource, watch_prefix)


def _namespace_subresources(registry: ResourceRegistry) -> tuple[str, ...]:
    rt = registry.by_path("", "v1", "namespaces")
    return rt.subresources if rt else ()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def request_verb(method: str, rp: ResourcePath, query) -> str:
    """The verb as RBAC and audit name it (get/list/watch/create/update/patch/delete/deletecollection).

    Raises APIError 405 for a method the path does not take.
    """
    watch = rp.watch_prefix or _truthy(query.get("watch"))
    if method == "GET":
        if watch and rp.subresource is None:
            return "watch"
        return "list" if rp.is_collection else "get"
    if method == "POST":
        # Only collections and the action-like subresources (pods/binding, pods/eviction,
        # serviceaccounts/token) take POST.
        if rp.is_collection or rp.subresource in ("binding", "eviction", "token"):
            return "create"
    elif method == "PUT" and not rp.is_collection:
        return "update"
    elif method == "PATCH" and not rp.is_collection:
        return "patch"
    elif method == "DELETE":
        if rp.subresource is None:
            return "deletecollection" if rp.is_collection else "delete"
    raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
