"""Bad requests get a Status with the right code and reason, and change nothing; odd-but-valid ones work."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import yaml

from kfab.pki import ControlPlanePKI, client_ssl_context


@pytest.fixture(scope="module")
def raw(kfab_server):
    """raw(method, path, body=None, content_type=..., accept=...) -> (code, headers, body bytes)."""
    pki = ControlPlanePKI(kfab_server.data_dir / "pki")
    ctx = client_ssl_context(pki, pki.admin_cert_path, pki.admin_key_path)

    def call(method, path, body=None, content_type="application/json", accept="application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(f"{kfab_server.url}{path}", data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()
    return call


def status_of(body: bytes) -> dict:
    status = json.loads(body)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    return status


def configmaps(raw, namespace) -> list[str]:
    code, _, body = raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert code == 200
    return [i["metadata"]["name"] for i in json.loads(body)["items"]]


@pytest.mark.parametrize("body, content_type, code, reason", [
    (b'{"metadata": {"name": ', "application/json", 400, "BadRequest"),
    (b"metadata: [unclosed", "application/yaml", 400, "BadRequest"),
    (b"", "application/json", 400, "BadRequest"),
    (b"[1, 2]", "application/json", 400, "BadRequest"),
    (b'{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}', "application/json", 400,
     "BadRequest"),
    (b"<cm/>", "application/xml", 415, "UnsupportedMediaType"),
])
def test_bad_bodies(raw, namespace, body, content_type, code, reason):
    got, _, answer = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body, content_type)
    status = status_of(answer)
    assert (got, status["code"], status["reason"]) == (code, code, reason)
    assert configmaps(raw, namespace) == ["kube-root-ca.crt"]  # what every namespace holds, nothing added


def test_yaml_body_and_yaml_answer(raw, namespace):
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: '1'\n"
    code, headers, answer = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body, "application/yaml",
                                accept="application/yaml")
    assert code == 201 and headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(answer)["data"] == {"a": "1"}


def test_body_over_the_limit_is_413(raw, namespace):
    big = {"metadata": {"name": "big"}, "data": {"blob": "x" * (4 * 1024 * 1024)}}
    code, _, answer = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", big)
    assert code == 413 and status_of(answer)["code"] == 413
    assert configmaps(raw, namespace) == ["kube-root-ca.crt"]  # what every namespace holds, nothing added


def test_unknown_patch_type_is_415(raw, namespace):
    raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "p"}})
    code, _, answer = raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/p", {"data": {"a": "b"}},
                          "application/x-patch")
    assert code == 415 and status_of(answer)["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize("method, path, code", [
    ("GET", "/api/v1/widgets", 404),
    ("GET", "/apis/example.com/v1/things", 404),
    ("GET", "/api/v1/pods/x", 404),                       # a pod is only reachable in its namespace
    ("GET", "/api/v1/namespaces/default/nodes", 404),     # nodes are cluster-scoped
    ("POST", "/api/v1/namespaces/default/pods/x", 405),
    ("PUT", "/api/v1/namespaces/default/configmaps", 405),
    ("GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(", 400),
    ("GET", "/api/v1/namespaces/default/configmaps?fieldSelector=spec.nodeName%3Dx", 400),
    ("GET", "/api/v1/namespaces/default/configmaps?limit=many", 400),
    ("GET", "/api/v1/namespaces/default/configmaps?continue=garbage", 400),
    ("POST", "/api/v1/namespaces/default/configmaps?dryRun=Some", 400),
])
def test_bad_paths_and_parameters(raw, method, path, code):
    got, _, answer = raw(method, path, {"metadata": {"name": "x"}} if method in ("POST", "PUT") else None)
    assert got == code and status_of(answer)["code"] == code


def test_partial_object_metadata(raw, namespace):
    raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "meta", "labels": {"a": "b"}},
                                                               "data": {"secret-ish": "value"}})
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    code, _, body = raw("GET", f"/api/v1/namespaces/{namespace}/configmaps", accept=accept)
    listed = json.loads(body)
    assert code == 200 and listed["kind"] == "PartialObjectMetadataList"
    meta = next(item for item in listed["items"] if item["metadata"]["name"] == "meta")
    assert meta["metadata"]["labels"] == {"a": "b"} and all("data" not in item for item in listed["items"])


def test_create_answers_with_warning_headers_for_dropped_fields(raw, namespace):
    code, headers, body = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Warn",
                              {"metadata": {"name": "warned"}, "bogus": 1})
    assert code == 201
    assert 'unknown field \\"bogus\\"' in headers["Warning"] or 'unknown field "bogus"' in headers["Warning"]
    assert "bogus" not in json.loads(body)
