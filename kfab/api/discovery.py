"""Discovery: /version, /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>.

kubectl resolves `po`, `deploy`, `all` from these documents. Both forms are served: the legacy documents
(APIVersions, APIGroupList, APIResourceList) and the aggregated one (apidiscovery.k8s.io/v2
APIGroupDiscoveryList) that kubectl asks for first so that one request per root replaces one per group.
"""

from __future__ import annotations

import json
import platform

from aiohttp import web

from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY, ResourceRegistry, ResourceType

KUBERNETES_VERSION = (1, 37, 0)

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# Subresource -> (group, version, kind, verbs) of what it answers with; "" kind = the parent's kind.
_SUBRESOURCES = {
    "status": ("", "", "", ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "binding": ("", "v1", "Binding", ("create",)),
    "log": ("", "", "", ("get",)),
    "finalize": ("", "", "", ("update",)),
    "exec": ("", "v1", "PodExecOptions", ("create", "get")),
    "attach": ("", "v1", "PodAttachOptions", ("create", "get")),
    "portforward": ("", "v1", "PodPortForwardOptions", ("create", "get")),
    "proxy": ("", "v1", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}


def version_info() -> dict:
    major, minor, patch = KUBERNETES_VERSION
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": str(major), "minor": str(minor), "emulationMajor": str(major), "emulationMinor": str(minor),
        "gitVersion": f"v{major}.{minor}.{patch}+kfab", "gitCommit": "", "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z", "goVersion": f"python{platform.python_version()}",
        "compiler": "kfab", "platform": f"linux/{machine}",
    }


def _sub_kind(rt: ResourceType, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    # A subresource this table does not describe answers with its parent's kind (and discovery never fails).
    group, version, kind, verbs = _SUBRESOURCES.get(sub, ("", "", "", ("get",)))
    if not kind:
        return rt.group, rt.version, rt.kind, verbs
    return group, version, kind, verbs


def api_resource_list(registry: ResourceRegistry, group: str, version: str) -> dict:
    resources = []
    for rt in registry.in_group_version(group, version):
        entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                 "kind": rt.kind, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sgroup, sversion, skind, verbs = _sub_kind(rt, sub)
            sub_entry = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                         "kind": skind, "verbs": list(verbs)}
            if (sgroup, sversion) != (group, version):
                sub_entry.update(group=sgroup, version=sversion)
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def api_group(registry: ResourceRegistry, group: str) -> dict:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in registry.group_versions()[group]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list(registry: ResourceRegistry) -> dict:
    groups = [api_group(registry, g) for g in registry.group_versions() if g]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _aggregated_group(registry: ResourceRegistry, group: str) -> dict:
    versions = []
    for version in registry.group_versions()[group]:
        resources = []
        for rt in registry.in_group_version(group, version):
            entry = {"resource": rt.plural,
                     "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                     "scope": "Namespaced" if rt.namespaced else "Cluster",
                     "singularResource": rt.singular, "verbs": list(rt.verbs)}
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            subs = []
            for sub in rt.subresources:
                sgroup, sversion, skind, verbs = _sub_kind(rt, sub)
                subs.append({"subresource": sub, "responseKind": {"group": sgroup, "version": sversion, "kind": skind},
                             "verbs": list(verbs)})
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        versions.append({"version": version, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}


def aggregated(registry: ResourceRegistry, core: bool) -> dict:
    groups = [g for g in registry.group_versions() if (g == "") == core]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": [_aggregated_group(registry, g) for g in groups]}


def wants_aggregated(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").replace(" ", "")
    for media in accept.split(","):
        params = set(media.split(";")[1:])
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


class Discovery:
    """The discovery handlers, over one registry."""

    def __init__(self, registry: ResourceRegistry = REGISTRY):
        self.registry = registry

    def add_routes(self, app: web.Application) -> None:
        # kube-apiserver answers each of these with a trailing slash too (kr8s asks for /version/).
        for path, handler in (("/version", self.version), ("/api", self.core_versions),
                              ("/api/{version}", self.core_resources), ("/apis", self.groups),
                              ("/apis/{group}", self.group), ("/apis/{group}/{version}", self.group_resources)):
            app.router.add_get(path, handler)
            app.router.add_get(path + "/", handler)

    async def version(self, request: web.Request) -> web.Response:
        return _json_response(version_info())

    async def core_versions(self, request: web.Request) -> web.Response:
        if wants_aggregated(request):
            return _aggregated_response(aggregated(self.registry, core=True))
        host = request.host
        return _json_response({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})

    async def core_resources(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        if version not in self.registry.group_versions().get("", []):
            raise _not_found()
        return _json_response(api_resource_list(self.registry, "", version))

    async def groups(self, request: web.Request) -> web.Response:
        if wants_aggregated(request):
            return _aggregated_response(aggregated(self.registry, core=False))
        return _json_response(api_group_list(self.registry))

    async def group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        if not group or group not in self.registry.group_versions():
            raise _not_found()
        return _json_response(api_group(self.registry, group))

    async def group_resources(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        if not group or version not in self.registry.group_versions().get(group, []):
            raise _not_found()
        return _json_response(api_resource_list(self.registry, group, version))


def _not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource")


def _json_response(body: dict) -> web.Response:
    # kube-apiserver labels discovery documents `application/json`, without aiohttp's charset parameter
    return web.Response(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def _aggregated_response(body: dict) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), headers={"Content-Type": AGGREGATED_CONTENT_TYPE})
