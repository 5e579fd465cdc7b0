"""Hostile and careless request bodies and parameters, through real curl and kubectl: every one gets a Status in
kube-apiserver's words (never a 500, a hang, or a Python repr), and changes nothing it should not."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kfab.pki import ControlPlanePKI

from tests.api.conftest import run_kubectl, start_server, stop_server, user_kubeconfig
from tests.waiting import wait_until

# What leaks when Python's own text reaches a client: type and object reprs, tracebacks, dict/list/bytes reprs.
# (Single quotes alone are no sign: kube's own selector errors use them.)
PYTHON_INTERNALS = re.compile(r"<class |Traceback|object at 0x|Error\(|\bNoneType\b|\{'|\['|\bb'|codec can't")


class Curl:
    """Real curl with a client certificate; returns (code, headers text, body text)."""

    def __init__(self, url: str, pki_dir: Path, cert: Path | None = None, key: Path | None = None):
        pki = ControlPlanePKI(pki_dir)
        self.url, self.ca = url, pki.ca_cert_path
        self.cert, self.key = cert or pki.admin_cert_path, key or pki.admin_key_path

    def __call__(self, method: str, path: str, body: bytes | str | None = None,
                 content_type: str = "application/json", timeout: float = 30) -> tuple[int, str, str]:
        args = ["curl", "-sS", "-X", method, "--cacert", str(self.ca), "--cert", str(self.cert), "--key",
                str(self.key), "-D", "-", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout),
                f"{self.url}{path}"]
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            args[1:1] = ["-H", f"Content-Type: {content_type}", "--data-binary", "@-"]
        out = subprocess.run(args, input=data or b"", capture_output=True, timeout=timeout + 10).stdout.decode()
        out, _, code = out.rpartition("\n")
        headers, _, text = out.partition("\r\n\r\n")
        return int(code), headers, text


@pytest.fixture(scope="module")
def curl(kfab_server):
    return Curl(kfab_server.url, kfab_server.data_dir / "pki")


def status(text: str) -> dict:
    body = json.loads(text)
    assert body["kind"] == "Status", text
    assert not PYTHON_INTERNALS.search(body["message"]), body["message"]
    return body


def configmap(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


def test_deeply_nested_bodies_are_a_400_not_a_crash(curl, namespace):
    deep = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":' + "[" * 5000 + "]" * 5000 + "}"
    for content_type in ("application/json", "application/yaml"):
        code, _, text = curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", deep, content_type)
        assert code == 400, text
        assert "exceeded max depth" in status(text)["message"]
    patch = '{"data":' + '{"a":' * 3000 + "1" + "}" * 3000 + "}"
    curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", json.dumps(configmap("p")))
    for patch_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        code, _, text = curl("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/p", patch, patch_type)
        assert code == 400, text
        assert "exceeded max depth" in status(text)["message"]


def test_unknown_media_types_are_415_with_kubes_accepted_list(curl, namespace):
    code, _, text = curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", json.dumps(configmap("t")),
                         "text/plain")
    assert code == 415
    assert status(text)["message"] == ("the body of the request was in an unknown format - accepted media types "
                                       "include: application/json, application/yaml, "
                                       "application/vnd.kubernetes.protobuf")
    code, _, text = curl("GET", f"/api/v1/namespaces/{namespace}/configmaps/t")
    assert code == 404, "a text/plain body must not be stored"
    curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", json.dumps(configmap("t")))
    code, _, text = curl("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/t", '{"data":{"a":"b"}}',
                         "text/plain")
    assert code == 415
    assert status(text)["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, "
        "application/apply-patch+yaml")


def test_duplicate_keys_refused_under_strict_and_warned_under_warn(curl, kubectl, namespace, tmp_path):
    body = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},'
            '"data":{"a":"1","a":"2"}}')
    code, _, text = curl("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Strict", body)
    assert code == 400
    assert status(text)["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding '
                                       'error: duplicate field "metadata.name", duplicate field "data.a"')
    code, headers, text = curl("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Warn", body)
    assert code == 201, text
    assert 'Warning: 299 - "duplicate field \\"data.a\\""' in headers
    assert json.loads(text)["data"] == {"a": "2"}, "the last value wins, as Go's decoder"
    code, _, text = curl("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/dup?fieldValidation=Strict",
                         '{"data":{"b":"1","b":"2"}}', "application/merge-patch+json")
    assert code == 422
    assert status(text)["message"].endswith('strict decoding error: duplicate field "data.b"')
    # kubectl sends YAML manifests as JSON: a duplicate key in the file is a YAML error on the client already;
    # the server's own YAML decoder is reached with a YAML body.
    code, _, text = curl("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Strict",
                         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata:\n  k: '1'\n  k: '2'\n",
                         "application/yaml")
    assert code == 400 and 'duplicate field "data.k"' in status(text)["message"]


def test_resource_versions_from_the_future_are_504_too_large(curl, namespace):
    code, _, text = curl("GET", f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion=999999999"
                                "&resourceVersionMatch=Exact")
    assert code == 504
    body = status(text)
    assert body["reason"] == "Timeout" and body["message"].startswith("Timeout: Too large resource version: "
                                                                      "999999999, current: ")
    assert body["details"]["causes"] == [{"reason": "ResourceVersionTooLarge",
                                          "message": "Too large resource version"}]
    started = time.monotonic()
    code, _, text = curl("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion=999999999")
    waited = time.monotonic() - started
    assert code == 200 and 2.5 < waited < 15, (code, waited)
    event = json.loads(text.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 504


def test_a_future_version_that_arrives_in_time_is_served(curl, namespace):
    code, _, text = curl("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    current = int(json.loads(text)["metadata"]["resourceVersion"])
    writer = threading.Timer(0.5, lambda: curl("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                                               json.dumps(configmap("later"))))
    writer.start()
    code, _, text = curl("GET", f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion={current + 1}"
                                "&resourceVersionMatch=NotOlderThan")
    writer.join()
    assert code == 200, text
    assert int(json.loads(text)["metadata"]["resourceVersion"]) >= current + 1


def test_uid_is_immutable_on_every_patch_type_and_put(curl, kubectl, namespace):
    curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", json.dumps(configmap("imm")))
    path = f"/api/v1/namespaces/{namespace}/configmaps/imm"
    _, _, text = curl("GET", path)
    original = json.loads(text)
    uid = original["metadata"]["uid"]
    changes = [
        ("application/json-patch+json", '[{"op":"replace","path":"/metadata/uid","value":"evil"}]'),
        ("application/merge-patch+json", '{"metadata":{"uid":"evil"}}'),
        ("application/strategic-merge-patch+json", '{"metadata":{"uid":"evil"}}'),
    ]
    for content_type, patch in changes:
        code, _, text = curl("PATCH", path, patch, content_type)
        assert code == 422, (content_type, text)
        assert status(text)["message"] == ('ConfigMap "imm" is invalid: metadata.uid: Invalid value: "evil": '
                                           "field is immutable")
    put = dict(original, metadata=dict(original["metadata"], uid="evil"))
    code, _, text = curl("PUT", path, json.dumps(put))
    assert code == 422 and "field is immutable" in status(text)["message"]
    result = kubectl("patch", "configmap", "imm", "-n", namespace, "--type=json",
                     "-p", '[{"op":"replace","path":"/metadata/uid","value":"evil"}]', check=False)
    assert result.returncode != 0 and "metadata.uid: Invalid value: \"evil\": field is immutable" in result.stderr
    # creationTimestamp is put back silently, name/namespace are refused (kube-apiserver's BeforeUpdate, checkName)
    code, _, text = curl("PATCH", path, '{"metadata":{"creationTimestamp":"2000-01-01T00:00:00Z"}}',
                         "application/merge-patch+json")
    assert code == 200 and json.loads(text)["metadata"]["creationTimestamp"] == \
        original["metadata"]["creationTimestamp"]
    for field in ("name", "namespace"):
        code, _, text = curl("PATCH", path, json.dumps({"metadata": {field: "other"}}),
                             "application/merge-patch+json")
        assert code == 400, text
    _, _, text = curl("GET", path)
    assert json.loads(text)["metadata"]["uid"] == uid


# Requests that fail on purpose, each a different error path; none may answer 500 or show Python's internals.
ERROR_PATHS = [
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"metadata": ', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"\xff\xfe\x00", "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"[1, 2]", "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'"text"', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"null", "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"metadata": []}', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"metadata": {"name": 5}}', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"metadata": {"name": "x", "labels": [1]}}', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"metadata": {"name": "x"}, "data": {"a": 1}}',
     "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"a: [", "application/yaml"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"--- 1\n--- 2\n", "application/yaml"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b"!!python/object:os.system {}", "application/yaml"),
    ("POST", "/api/v1/namespaces/{ns}/pods", b'{"metadata": {"name": "p"}, "spec": {"containers": "no"}}',
     "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/pods", b'{"metadata": {"name": "p"}, "spec": {"containers": [1]}}',
     "application/json"),
    ("POST", "/apis/apps/v1/namespaces/{ns}/deployments", b'{"metadata": {"name": "d"}, "spec": {"replicas": "x"}}',
     "application/json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"op": "add"}', "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[1]', "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "frob", "path": "/data"}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "add", "path": "/data/a/b", "value": 1}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "remove", "path": "/nope/0"}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "move", "from": "/x", "path": "/y"}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "test", "path": "/data", "value": 1}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "replace", "path": "/kind", "value": []}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'"x"', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"data": []}', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[]', "application/strategic-merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"$patch": "frob"}',
     "application/strategic-merge-patch+json"),
    # found by the fuzz suite at 400 examples: the map was shown as a Python dict
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"apiVersion": null, "$patch": null}',
     "application/strategic-merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"data": {"$patch": 5, "a": [1, {"b": true}]}}',
     "application/strategic-merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"apiVersion": [""]}', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"kind": {"a": null}}', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base?fieldManager=x", b'{"apiVersion": {"apiVersion": null}}',
     "application/apply-patch+yaml"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps", b'{"kind": [1], "metadata": {"name": "k"}}', "application/json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"metadata": 1}', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"metadata": "x"}',
     "application/strategic-merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'[{"op": "replace", "path": "/metadata", "value": []}]',
     "application/json-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"metadata": {"$setElementOrder/labels": 1}}',
     "application/strategic-merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b'{"kind": "Secret"}', "application/merge-patch+json"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base?fieldManager=x", b"a: [", "application/apply-patch+yaml"),
    ("PATCH", "/api/v1/namespaces/{ns}/configmaps/base", b"{}", "application/apply-patch+yaml"),
    ("PUT", "/api/v1/namespaces/{ns}/configmaps/base", b'{"metadata": {"name": "other"}}', "application/json"),
    ("PUT", "/api/v1/namespaces/{ns}/configmaps/base", b'{"metadata": {"name": "base", "resourceVersion": "x"}}',
     "application/json"),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?labelSelector=a%20in%20(", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?labelSelector=%3D%3D%3D", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?fieldSelector=spec.nope%3Dx", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?limit=x", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?continue=%%%", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?resourceVersion=x&resourceVersionMatch=Exact", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?resourceVersion=-5&resourceVersionMatch=Exact", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?resourceVersionMatch=Frob&resourceVersion=1", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion=x", None, ""),
    ("GET", "/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=x", None, ""),
    ("POST", "/api/v1/namespaces/{ns}/configmaps?fieldValidation=Frob", b"{}", "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps?dryRun=Some", b"{}", "application/json"),
    ("DELETE", "/api/v1/namespaces/{ns}/configmaps/base", b"[1]", "application/json"),
    ("DELETE", "/api/v1/namespaces/{ns}/configmaps/base", b'{"propagationPolicy": "Frob"}', "application/json"),
    ("DELETE", "/api/v1/namespaces/{ns}/configmaps/base", b'{"preconditions": {"uid": 5}}', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/pods/nope/binding", b'{"target": 1}', "application/json"),
    ("POST", "/api/v1/namespaces/{ns}/pods/nope/eviction", b'[]', "application/json"),
    ("PUT", "/apis/apps/v1/namespaces/{ns}/deployments/nope/scale", b'{"spec": {"replicas": "x"}}',
     "application/json"),
    ("GET", "/api/v1/namespaces/{ns}/nothings", None, ""),
    ("GET", "/apis/nope.example/v1/things", None, ""),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", b'{"spec": 1}', "application/json"),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", b'[]', "application/json"),
]


def test_no_error_path_answers_500_or_shows_python_internals(curl, namespace):
    curl("POST", f"/api/v1/namespaces/{namespace}/configmaps", json.dumps(configmap("base", data={"a": "b"})))
    seen = []
    for method, path, body, content_type in ERROR_PATHS:
        code, _, text = curl(method, path.format(ns=namespace), body, content_type or "application/json")
        where = f"{method} {path} {body!r}"
        assert 400 <= code < 500 or code == 200 and "watch=true" in path, (where, code, text)
        if code >= 400:
            body_status = status(text)
            assert body_status["code"] == code, where
            seen.append(code)
        else:
            event = json.loads(text.splitlines()[0]) if text else {}
            assert event.get("type") != "ERROR" or event["object"]["code"] != 500, where
    assert len(seen) >= len(ERROR_PATHS) - 2


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-inflight")
    proc, server = start_server(data_dir, "--max-requests-inflight", "2", "--disable-controllers")
    try:
        yield server
    finally:
        stop_server(proc)


def test_max_in_flight_answers_429_with_retry_after_and_is_fair_per_client(limited_server, tmp_path):
    admin = Curl(limited_server.url, limited_server.data_dir / "pki")
    slow = "/api/v1/namespaces/default/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan"
    holder = threading.Thread(target=admin, args=("GET", slow))
    holder.start()
    time.sleep(0.5)  # the holder's list now waits up to 3 s for a version that never comes
    try:
        code, headers, text = admin("GET", "/api/v1/namespaces/default/configmaps")
        assert code == 429, text
        assert "Retry-After: 1" in headers
        body = status(text)
        assert body["reason"] == "TooManyRequests" and body["message"] == ("Too many requests, please try again "
                                                                           "later.")
        other = user_kubeconfig(limited_server.data_dir, tmp_path, "alice", "system:masters")
        got = run_kubectl(other, "get", "configmaps", "-n", "default", "-o", "name")
        assert got.returncode == 0, f"another client is still served: {got.stderr}"
    finally:
        holder.join()
    code, _, _ = admin("GET", "/api/v1/namespaces/default/configmaps")
    assert code == 200


def test_deep_but_legal_objects_still_work_through_every_verb(curl, kubectl):
    """kfab's nesting limit (200) is below Go's (10000) but far above real objects: a custom resource with a
    free-form spec 190 levels deep is created, patched and read back; 400 levels is refused."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "deeps.hardening.example.com"},
           "spec": {"group": "hardening.example.com", "scope": "Namespaced",
                    "names": {"plural": "deeps", "singular": "deep", "kind": "Deep"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    kubectl("apply", "-f", "-", input=json.dumps(crd))
    base = "/apis/hardening.example.com/v1/namespaces/default/deeps"

    def nested(depth):
        value: object = "leaf"
        for _ in range(depth):
            value = {"a": value}
        return value

    def created():
        code, _, _ = curl("POST", base, json.dumps({"apiVersion": "hardening.example.com/v1", "kind": "Deep",
                                                    "metadata": {"name": "d"}, "spec": nested(190)}))
        return code in (201, 409)
    wait_until("the custom resource served and created", created)
    for content_type, patch in (("application/merge-patch+json", {"spec": nested(190)}),
                                ("application/json-patch+json", [{"op": "replace", "path": "/spec",
                                                                  "value": nested(189)}])):
        code, _, text = curl("PATCH", f"{base}/d", json.dumps(patch), content_type)
        assert code == 200, (content_type, text[:300])
    code, _, text = curl("GET", f"{base}/d")
    assert code == 200 and json.loads(text)["spec"] == nested(189)
    code, _, text = curl("POST", base, json.dumps({"apiVersion": "hardening.example.com/v1", "kind": "Deep",
                                                   "metadata": {"name": "too-deep"}, "spec": nested(400)}))
    assert code == 400 and "exceeded max depth" in status(text)["message"]
