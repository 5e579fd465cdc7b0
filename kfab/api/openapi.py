"""OpenAPI documents for the kinds kfab serves, built from the published schemas (kfab.objects.schema_defs).

    /openapi/v2                        Swagger 2.0, every kind (JSON)
    /openapi/v3                        index: {"paths": {"api/v1": {"serverRelativeURL": "...?hash=H"}, ...}}
    /openapi/v3/api/v1                 OpenAPI 3.0, one document per group-version, what `kubectl explain`,
    /openapi/v3/apis/<group>/<version>   `kubectl apply` (patch metadata) and field validation read

Documents are built once, on first use, and cached with their hash. As kube-apiserver does, a request
carrying the current `?hash=` is answered as immutable (clients cache it for good), an old hash is
redirected to the current one, and ETag / If-None-Match work on every document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web

from kfab.api import openapi_proto
from kfab.api.openapi_paths import render_v2, render_v3, resource_paths
from kfab.objects import schema_defs
from kfab.objects.registry import REGISTRY, ResourceRegistry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Bodies every group-version's operations refer to, besides the kinds themselves.
_COMMON = [META + "Status", META + "DeleteOptions", META + "Patch", META + "WatchEvent", META + "APIResourceList"]
_EXTRA = {"scale": "io.k8s.api.autoscaling.v1.Scale", "binding": "io.k8s.api.core.v1.Binding",
          "eviction": "io.k8s.api.policy.v1.Eviction"}
_KUBE_VERSION = "v1.37.0"


@dataclass(frozen=True)
class Document:
    body: bytes
    hash: str  # uppercase hex SHA-512, as kube-openapi computes it
    content_type: str = "application/json"


def _document(doc: dict) -> Document:
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return Document(body, hashlib.sha512(body).hexdigest().upper())


def _proto_document(doc: dict) -> Document:
    body = openapi_proto.document(doc)
    return Document(body, hashlib.sha512(body).hexdigest().upper(), openapi_proto.CONTENT_TYPE)


def _convert(schema, prefix: str, v3: bool):
    """JSON-schema (draft 2020, `#/$defs/` refs, nullable type lists) -> OpenAPI schema with `prefix` refs."""
    if isinstance(schema, list):
        return [_convert(s, prefix, v3) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = prefix + value.rsplit("/", 1)[1]
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if kinds:
                out[key] = kinds[0]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _property(name, prop, prefix, v3) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "allOf", "oneOf", "anyOf", "not"):
            out[key] = _convert(value, prefix, v3)
        else:
            out[key] = value
    return out


def _property(name: str, schema: dict, prefix: str, v3: bool) -> dict:
    converted = _convert(schema, prefix, v3)
    if name in ("apiVersion", "kind"):
        # The published schemas pin these with an enum; kube-apiserver's documents do not.
        converted.pop("enum", None)
    if v3 and "$ref" in converted and len(converted) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; kube-apiserver wraps the ref in allOf so the field's own
        # description survives (kubectl explain prints it above the type's description).
        converted["allOf"] = [{"$ref": converted.pop("$ref")}]
    return converted


def _definition(name: str, prefix: str, v3: bool, custom: dict) -> dict:
    schema = custom.get(name) or schema_defs.definitions()[name]
    description = schema.get("description", "")
    if name == _INT_OR_STRING:
        return ({"description": description, "format": "int-or-string",
                 "oneOf": [{"type": "integer"}, {"type": "string"}]} if v3
                else {"description": description, "format": "int-or-string", "type": "string"})
    if name == _QUANTITY:
        return ({"description": description, "oneOf": [{"type": "string"}, {"type": "number"}]} if v3
                else {"description": description, "type": "string"})
    return _convert(schema, prefix, v3)


def _referenced(names: list[str], custom: dict) -> list[str]:
    """`names` and every definition they refer to, transitively, in a stable order."""
    seen: dict[str, None] = {}
    known = schema_defs.definitions()
    stack = [n for n in reversed(names) if n in known or n in custom]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = None
        stack.extend(_refs(custom.get(name) or known[name]))
    return sorted(seen)


def _refs(schema) -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            found.append(ref.rsplit("/", 1)[1])
        for value in schema.values():
            found.extend(_refs(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_refs(value))
    return found


def _roots(types: list[ResourceType]) -> list[str]:
    names = list(_COMMON)
    for rt in types:
        name = schema_defs.definition_name(rt)
        names += [name, name + "List"]
        names += [_EXTRA[sub] for sub in rt.subresources if sub in _EXTRA]
    return names


def custom_definitions(types: list[ResourceType]) -> dict[str, dict]:
    """The definitions of custom resources (from their CRDs' schemas) as kube-apiserver publishes them:
    apiVersion, kind and metadata added, x-kubernetes-group-version-kind set, and a <Kind>List beside."""
    out: dict[str, dict] = {}
    for rt in types:
        if rt.custom is None:
            continue
        name = schema_defs.definition_name(rt)
        gvk = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
        schema = dict(rt.custom.schema)
        schema["properties"] = {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"$ref": f"#/$defs/{META}ObjectMeta", "description": _METADATA_DOC},
            **(schema.get("properties") or {})}
        schema["x-kubernetes-group-version-kind"] = gvk
        out[name] = schema
        out[name + "List"] = {
            "description": f"{rt.kind}List is a list of {rt.kind}", "type": "object", "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                "items": {"type": "array", "description": f"List of {rt.plural}.",
                          "items": {"$ref": f"#/$defs/{name}"}},
                "kind": {"type": "string", "description": _KIND_DOC},
                "metadata": {"$ref": f"#/$defs/{META}ListMeta"}},
            "x-kubernetes-group-version-kind": [dict(gvk[0], kind=rt.list_kind)]}
    return out


_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                    "convert recognized schemas to the latest internal value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer this "
             "from the endpoint the client submits requests to. Cannot be updated. In CamelCase.")
_METADATA_DOC = "Standard object's metadata."


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def build_v3(registry: ResourceRegistry, group: str, version: str) -> dict:
    types = registry.in_group_version(group, version)
    custom = custom_definitions(types)
    prefix = "#/components/schemas/"
    paths = {}
    for rt in types:
        for item in resource_paths(rt):
            paths[item.path] = render_v3(item)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": _KUBE_VERSION},
        "paths": paths,
        "components": {
            "schemas": {name: _definition(name, prefix, True, custom)
                        for name in _referenced(_roots(types), custom)},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    }


def build_v2(registry: ResourceRegistry) -> dict:
    types = list(registry.types)
    custom = custom_definitions(types)
    paths = {}
    for rt in types:
        for item in resource_paths(rt):
            paths[item.path] = render_v2(item)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": _KUBE_VERSION},
        "paths": paths,
        "definitions": {name: _definition(name, "#/definitions/", False, custom)
                        for name in _referenced(_roots(types), custom)},
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


class OpenAPIDocuments:
    """The built documents, made on first use (a second or so of CPU) and then served from memory."""

    def __init__(self, registry: ResourceRegistry = REGISTRY):
        self.registry = registry
        self._lock = threading.Lock()
        self._v2: Document | None = None
        self._v2_proto: Document | None = None
        self._v3: dict[str, Document] | None = None
        self._generation = registry.generation

    def _drop_stale(self) -> None:
        # A CustomResourceDefinition came, changed or went: the documents are built again on next use.
        if self._generation != self.registry.generation:
            self._generation = self.registry.generation
            self._v2 = self._v2_proto = self._v3 = None

    def v2(self, protobuf: bool = False) -> Document:
        with self._lock:
            self._drop_stale()
            if self._v2 is None:
                swagger = build_v2(self.registry)
                self._v2, self._v2_proto = _document(swagger), _proto_document(swagger)
            return self._v2_proto if protobuf else self._v2

    def v3(self) -> dict[str, Document]:
        """{"api/v1": Document, "apis/apps/v1": Document, ...}"""
        with self._lock:
            self._drop_stale()
            if self._v3 is None:
                self._v3 = {gv_path(group, version): _document(build_v3(self.registry, group, version))
                            for group, versions in self.registry.group_versions().items() for version in versions}
            return self._v3

    def v3_index(self) -> dict:
        return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc.hash}"}
                          for path, doc in self.v3().items()}}


def _respond(request: web.Request, doc: Document, immutable: bool = False) -> web.Response:
    etag = f'"{doc.hash}"'
    headers = {"ETag": etag, "Vary": "Accept"}
    if immutable:
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = formatdate(time.time() + 365 * 24 * 3600, usegmt=True)
    else:
        headers["Cache-Control"] = "no-cache, private"
    if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=doc.body, content_type=doc.content_type, headers=headers)
    response.enable_compression()
    return response


def add_openapi_routes(app: web.Application, registry: ResourceRegistry = REGISTRY) -> None:
    documents = OpenAPIDocuments(registry)

    async def v2(request: web.Request) -> web.Response:
        # client-go asks for protobuf only; browsers, curl and other tools get JSON.
        protobuf = "protobuf" in request.headers.get("Accept", "")
        doc = await asyncio.to_thread(documents.v2, protobuf)
        return _respond(request, doc)

    async def v3_index(request: web.Request) -> web.Response:
        await asyncio.to_thread(documents.v3)
        body = json.dumps(documents.v3_index(), separators=(",", ":"), sort_keys=True).encode()
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache, private"})

    async def v3_group_version(request: web.Request) -> web.Response:
        docs = await asyncio.to_thread(documents.v3)
        path = request.match_info["gv"].strip("/")
        doc = docs.get(path)
        if doc is None:
            raise web.HTTPNotFound()
        wanted = request.query.get("hash")
        if wanted and wanted != doc.hash:
            # An outdated link (a client's cached index): send it to the current document, as kube-openapi does.
            raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={doc.hash}")
        return _respond(request, doc, immutable=bool(wanted))

    app.router.add_get("/openapi/v2", v2)
    app.router.add_get("/openapi/v3", v3_index)
    app.router.add_get("/openapi/v3/", v3_index)
    app.router.add_get("/openapi/v3/{gv:.+}", v3_group_version)
