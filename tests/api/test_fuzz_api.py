"""Fuzz (hypothesis) of a real kfab server over HTTPS: generated manifests, patches, selectors, query
parameters and raw bodies. Property: every answer is a Kubernetes object or Status below 500, in time, with no
Python internals in its message. The budget is tests/fuzz_support.py's (KFAB_FUZZ_EXAMPLES)."""

from __future__ import annotations

import http.client
import json
import re
import string
import urllib.parse
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kfab.pki import ControlPlanePKI, client_ssl_context
from tests.fuzz_support import FUZZ, counted, json_values, print_summary

TIMEOUT = 15.0
INTERNALS = re.compile(r"<class |Traceback|object at 0x|\bNoneType\b|\{'|\['")
KINDS = {"configmaps": ("v1", "ConfigMap"), "pods": ("v1", "Pod"), "secrets": ("v1", "Secret"),
         "services": ("v1", "Service"), "deployments": ("apps/v1", "Deployment")}


class Client:
    """One persistent HTTPS connection as the admin; reconnects when the server closes it."""

    def __init__(self, server):
        pki = ControlPlanePKI(server.data_dir / "pki")
        self.ctx = client_ssl_context(pki, pki.admin_cert_path, pki.admin_key_path)
        parts = urlsplit(server.url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = None

    def __call__(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=TIMEOUT)
            try:
                headers = {"Content-Type": content_type} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def api(kfab_server, request):
    client = Client(kfab_server)
    code, _ = client("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": "fuzz"}}).encode())
    assert code in (201, 409)
    code, _ = client("POST", "/api/v1/namespaces/fuzz/serviceaccounts",
                     json.dumps({"metadata": {"name": "default"}}).encode())
    code, _ = client("POST", "/apis/apps/v1/namespaces/fuzz/deployments", json.dumps(
        {"metadata": {"name": "target"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}).encode())
    assert code in (201, 409)
    yield client
    print_summary(request.config)


def check(code: int, body: bytes, what: str) -> None:
    assert code < 500, f"{what}: {code} {body[:300]!r}"
    if code >= 400:
        status = json.loads(body)
        assert status["kind"] == "Status" and status["code"] == code, what
        assert not INTERNALS.search(status["message"]), f"{what}: {status['message']}"


def path_of(resource: str) -> str:
    group = KINDS[resource][0]
    base = "/api/v1" if group == "v1" else f"/apis/{group}"
    return f"{base}/namespaces/fuzz/{resource}"


manifests = st.builds(
    lambda resource, meta, rest, name: (resource, {
        "apiVersion": KINDS[resource][0], "kind": KINDS[resource][1],
        "metadata": {"name": name, **meta} if isinstance(meta, dict) else meta, **rest}),
    st.sampled_from(sorted(KINDS)), json_values, st.dictionaries(st.sampled_from(
        ["spec", "data", "stringData", "status", "type", "immutable", "binaryData"]), json_values, max_size=3),
    st.text(string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=20))


@FUZZ
@given(manifests, st.sampled_from(["Strict", "Warn", "Ignore"]))
def test_manifests(api, manifest, validation):
    resource, obj = manifest
    with counted("API manifests"):
        code, body = api("POST", f"{path_of(resource)}?fieldValidation={validation}&dryRun=All",
                         json.dumps(obj).encode())
        check(code, body, f"create {resource} {obj}")


@FUZZ
@given(json_values, st.sampled_from(["application/merge-patch+json", "application/strategic-merge-patch+json",
                                     "application/json-patch+json", "application/apply-patch+yaml"]))
def test_patches(api, patch, content_type):
    with counted("API patches"):
        query = "?dryRun=All&fieldManager=fuzz" + ("&force=true" if content_type.endswith("yaml") else "")
        code, body = api("PATCH", f"{path_of('deployments')}/target{query}", json.dumps(patch).encode(),
                         content_type)
        check(code, body, f"patch {content_type} {patch}")


selector_text = st.text(string.ascii_letters + string.digits + "=!,()-_./ ", max_size=40)


@FUZZ
@given(st.dictionaries(st.sampled_from(["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
                                        "resourceVersionMatch", "timeoutSeconds", "allowWatchBookmarks",
                                        "sendInitialEvents", "watch"]),
                       st.one_of(selector_text, st.sampled_from(["0", "1", "-1", "Exact", "NotOlderThan", "true",
                                                                 "99999999999999999999", ""])), max_size=4),
       st.sampled_from(sorted(KINDS)))
def test_list_queries(api, query, resource):
    if query.get("watch") in ("true", "1") or "watch" in query:
        query["timeoutSeconds"] = "1"
        query["watch"] = "true"
    if "resourceVersion" in query and query.get("resourceVersion", "").isdigit() \
            and len(query["resourceVersion"]) > 6:
        query.pop("resourceVersionMatch", None)  # a far-future version waits 3 s by design: keep the run short
        query["resourceVersion"] = "0"
    with counted("API list/watch queries"):
        code, body = api("GET", f"{path_of(resource)}?{urllib.parse.urlencode(query)}")
        if code == 200 and query.get("watch") == "true":
            for line in body.splitlines():
                event = json.loads(line)
                assert event["type"] != "ERROR" or event["object"]["code"] < 500, (query, event)
        else:
            check(code, body, f"list {resource} {query}")


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["application/json", "application/yaml", "text/plain",
                                                  "application/vnd.kubernetes.protobuf", "", "application/x-www"]),
       st.sampled_from(["POST", "PUT"]))
def test_raw_bodies(api, body, content_type, method):
    with counted("API raw bodies"):
        path = path_of("configmaps") + ("/target" if method == "PUT" else "")
        code, answer = api(method, path, body, content_type or "application/json")
        check(code, answer, f"{method} {content_type} {body!r}")
