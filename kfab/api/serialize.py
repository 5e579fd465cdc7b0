"""Request bodies in (JSON or YAML), responses out (JSON, YAML, Table, PartialObjectMetadata).

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io, application/json` on `get`; metadata-only
clients (garbage collectors) ask for `as=PartialObjectMetadata[List]`; everyone else gets plain JSON.
"""

from __future__ import annotations


import yaml
from aiohttp import web

from kfab.api import protobuf
from kfab.api.decoding import EXCEEDED, Decoded, load_json, load_yaml_documents, yaml_message
from kfab.objects import jsonwire
from kfab.objects.errors import APIError, bad_request, unsupported_media_type
from kfab.objects.registry import ResourceType
from kfab.objects.tables import to_table

JSON = "application/json"
YAML = "application/yaml"


def _media_types(accept: str):
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        params = {}
        for f in fields[1:]:
            key, _, value = f.partition("=")
            params[key.strip().lower()] = value.strip()
        yield media, params


def negotiate(request: web.Request) -> str:
    """object | table | partial | yaml — the first form in the Accept header that kfab serves."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return "object"
    for media, params in _media_types(accept):
        as_ = params.get("as")
        if media in (JSON, "application/*", "*/*") and as_ is None:
            return "object"
        if media == JSON and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if as_ == "Table":
                return "table"
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "partial"
        if media == YAML and as_ is None:
            return "yaml"
    if any(m == "application/vnd.kubernetes.protobuf" for m, _ in _media_types(accept)):
        # JSON is always acceptable to Kubernetes clients that also speak protobuf
        return "object"
    raise APIError(406, "NotAcceptable", f"only the following media types are accepted: {JSON}, {YAML}, "
                   f"{JSON};as=Table;v=v1;g=meta.k8s.io")


async def read_body(request: web.Request, limit: int) -> bytes:
    body = await request.read()
    if len(body) > limit:
        raise APIError(413, "RequestEntityTooLarge", f"the request body is too large: {len(body)} bytes "
                       f"(limit {limit})")
    return body


def content_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", JSON)


def parse_object(body: bytes, content_type: str) -> object:
    """Decode a JSON or YAML body; 400 with the parser's message when malformed, 415 for other media types."""
    return decode_object(body, content_type).value


# What kube-apiserver's create and update decode (its serializers' media types, in its order).
OBJECT_MEDIA_TYPES = (JSON, YAML, protobuf.MEDIA_TYPE)


def decode_object(body: bytes, content_type: str) -> Decoded:
    """parse_object, keeping the duplicate keys it saw (for fieldValidation)."""
    media = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise bad_request("the body of the request was empty")
    if media in (JSON, "", "application/merge-patch+json", "application/strategic-merge-patch+json",
                 "application/json-patch+json"):
        try:
            return load_json(body)
        except (ValueError, UnicodeDecodeError) as e:
            if media == JSON or str(e) == EXCEEDED:
                raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if media == protobuf.MEDIA_TYPE:
        return Decoded(protobuf.decode(body))
    if media in (YAML, "application/x-yaml", "text/yaml", "application/apply-patch+yaml", ""):
        try:
            docs = load_yaml_documents(body)
        except yaml.YAMLError as e:
            raise bad_request(f"error converting YAML to JSON: {yaml_message(e)}") from None
        except ValueError as e:
            raise bad_request(f"error converting YAML to JSON: {e}") from None
        if len(docs) != 1:
            raise bad_request(f"the request body must hold exactly one object, found {len(docs)} documents")
        return docs[0]
    raise unsupported_media_type(OBJECT_MEDIA_TYPES)


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def dump(body: dict, form: str, status: int = 200, headers: dict | None = None) -> web.Response:
    if form == "yaml":
        return web.Response(status=status, body=yaml.safe_dump(body, sort_keys=False).encode(),
                            content_type=YAML, headers=headers)
    return web.Response(status=status, body=jsonwire.dumps(body),
                        content_type=JSON, headers=headers)


def render_object(request: web.Request, rt: ResourceType, obj: dict, status: int = 200,
                  headers: dict | None = None) -> web.Response:
    form = negotiate(request)
    if form == "table":
        body = to_table(rt, [obj], include_object=request.query.get("includeObject", "Metadata"))
    elif form == "partial":
        body = partial_metadata(obj)
    else:
        body = obj
    return dump(body, form, status, headers)


def render_list(request: web.Request, rt: ResourceType, items: list[dict], list_meta: dict) -> web.Response:
    form = negotiate(request)
    if form == "table":
        body = to_table(rt, items, include_object=request.query.get("includeObject", "Metadata"),
                        list_meta=list_meta)
    elif form == "partial":
        body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                "items": [partial_metadata(o) for o in items]}
    else:
        body = {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta, "items": items}
    return dump(body, form)


def status_success(rt: ResourceType, obj: dict | None = None, code: int | None = 200) -> dict:
    """A Success Status; with `obj`, the details of a deleted object as kube-apiserver's finalizeDelete gives
    them (kind is the resource, as there; no code; group only when there is one)."""
    body: dict = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if code is not None:
        body["code"] = code
    if obj is not None:
        meta = obj.get("metadata", {})
        details = {"name": meta.get("name", ""), "group": rt.group, "kind": rt.plural, "uid": meta.get("uid", "")}
        body["details"] = {k: v for k, v in details.items() if v}
    return body
