"""OpenAPI documents: complete (every ref resolves), shaped the way kubectl reads them, cached by hash."""

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kfab.api.openapi import OpenAPIDocuments, add_openapi_routes, build_v2, build_v3
from kfab.objects.registry import REGISTRY


def all_refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def all_schemas(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from all_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_schemas(value)


GROUP_VERSIONS = [(g, v) for g, vs in REGISTRY.group_versions().items() for v in vs]


@pytest.fixture(scope="module")
def v3_docs():
    return {gv: build_v3(REGISTRY, *gv) for gv in GROUP_VERSIONS}


@pytest.mark.parametrize("gv", GROUP_VERSIONS, ids=lambda gv: "/".join(filter(None, gv)))
def test_every_reference_in_a_v3_document_resolves_inside_it(v3_docs, gv):
    doc = v3_docs[gv]
    schemas = doc["components"]["schemas"]
    for ref in all_refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    # JSON-schema leftovers kubectl's templates choke on: type lists and $defs refs.
    assert all(not isinstance(s.get("type"), list) for s in all_schemas(schemas))


def test_each_kind_carries_its_group_version_kind(v3_docs):
    for rt in REGISTRY.types:
        schemas = v3_docs[(rt.group, rt.version)]["components"]["schemas"]
        kinds = [s for s in schemas.values()
                 if {"group": rt.group, "version": rt.version, "kind": rt.kind}
                 in s.get("x-kubernetes-group-version-kind", [])]
        assert len(kinds) == 1, rt.kind
        assert "enum" not in kinds[0]["properties"]["kind"]


def test_kubectl_finds_the_kind_from_the_list_path_of_a_resource(v3_docs):
    # kubectl explain: GVR -> the get/list operation under /apis/<g>/<v>/[namespaces/{namespace}/]<plural>
    doc = v3_docs[("apps", "v1")]
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert op["x-kubernetes-action"] == "list"
    nodes = v3_docs[("", "v1")]["paths"]["/api/v1/nodes"]["get"]
    assert nodes["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Node", "version": "v1"}


def test_patch_operations_advertise_server_side_field_validation(v3_docs):
    # Without this parameter kubectl falls back to client-side validation with the v2 protobuf document.
    for rt in REGISTRY.types:
        if "patch" not in rt.verbs:
            continue
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        patch = v3_docs[(rt.group, rt.version)]["paths"][f"{prefix}{scope}/{rt.plural}/{{name}}"]["patch"]
        assert {"name": "fieldValidation", "in": "query"} in [{k: p[k] for k in ("name", "in")}
                                                            for p in patch["parameters"]], rt.kind
        assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]


def test_field_descriptions_survive_next_to_refs(v3_docs):
    spec = v3_docs[("apps", "v1")]["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
    strategy = spec["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["description"] == "The deployment strategy to use to replace existing pods with new ones."
    containers = v3_docs[("", "v1")]["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_int_or_string_and_quantity_are_either_type(v3_docs):
    schemas = v3_docs[("apps", "v1")]["components"]["schemas"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"] == [{"type": "integer"},
                                                                                   {"type": "string"}]
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [{"type": "string"},
                                                                                 {"type": "number"}]


def test_swagger_v2_document_is_complete():
    doc = build_v2(REGISTRY)
    assert doc["swagger"] == "2.0"
    for ref in all_refs(doc):
        assert ref.removeprefix("#/definitions/") in doc["definitions"], ref
    deployment = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    post = doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]
    assert post["parameters"][0] == {"in": "body", "name": "body", "required": True,
                                     "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}}


def run(coro_fn):
    async def main():
        app = web.Application()
        add_openapi_routes(app)
        async with TestClient(TestServer(app)) as client:
            return await coro_fn(client)
    return asyncio.run(main())


def test_v3_index_links_each_group_version_by_hash():
    async def check(client):
        index = await (await client.get("/openapi/v3")).json()
        served = {f"apis/{g}/{v}" for g, versions in REGISTRY.group_versions().items() if g for v in versions}
        assert set(index["paths"]) == {"api/v1"} | served
        assert {"apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"} <= served
        url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
        current = await client.get(url)
        assert current.status == 200 and current.headers["Cache-Control"] == "public, immutable"
        doc = await current.json()
        assert doc["openapi"] == "3.0.0" and "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
        etag = current.headers["ETag"]
        assert etag == f'"{url.split("hash=")[1]}"'

        unhashed = await client.get("/openapi/v3/apis/apps/v1")
        assert unhashed.status == 200 and unhashed.headers["Cache-Control"] == "no-cache, private"
        cached = await client.get("/openapi/v3/apis/apps/v1", headers={"If-None-Match": etag})
        assert cached.status == 304
        stale = await client.get("/openapi/v3/apis/apps/v1?hash=0BAD", allow_redirects=False)
        assert stale.status == 301 and stale.headers["Location"] == url
        assert (await client.get("/openapi/v3/apis/example.com/v1")).status == 404  # a group kfab does not serve
    run(check)


def test_v2_is_served_as_json_with_an_etag():
    async def check(client):
        response = await client.get("/openapi/v2", headers={"Accept-Encoding": "gzip"})
        assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
        doc = json.loads(await response.read())
        assert "io.k8s.api.core.v1.Pod" in doc["definitions"]
        again = await client.get("/openapi/v2", headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304
    run(check)


def test_v2_is_protobuf_for_clients_that_ask_for_it():
    async def check(client):
        response = await client.get("/openapi/v2", headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        assert (await response.read()).startswith(b"\n\x032.0")  # field 1 (swagger), "2.0"
    run(check)


def test_documents_are_built_once():
    docs = OpenAPIDocuments()
    assert docs.v3() is docs.v3() and docs.v2() is docs.v2()
