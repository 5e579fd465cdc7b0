"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) on Kubernetes objects, and content-type handling."""

import json

import pytest

from kfab.objects.errors import APIError
from kfab.api.patch import JSON_PATCH, MERGE_PATCH, apply_patch, merge_patch
from kfab.objects.registry import REGISTRY

DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
CONFIGMAP = REGISTRY.by_kind("v1", "ConfigMap")


@pytest.fixture
def deploy():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "patch-demo", "labels": {"app": "nginx"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "patch-demo-ctr", "image": "nginx"}, {"name": "patch-demo-ctr-2", "image": "redis"}]}}}}


def jp(obj, ops):
    return apply_patch(DEPLOYMENT, obj, JSON_PATCH, json.dumps(ops).encode())


def test_json_patch_operations(deploy):
    out = jp(deploy, [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "log", "image": "busybox"}},
        {"op": "test", "path": "/metadata/name", "value": "patch-demo"},
    ])
    assert out["spec"]["replicas"] == 5 and out["metadata"]["labels"] == {"app": "nginx", "tier": "web"}
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["patch-demo-ctr", "log"]
    assert deploy["spec"]["replicas"] == 2, "the original object must not be modified"


def test_json_patch_failed_test_is_422_and_changes_nothing(deploy):
    with pytest.raises(APIError) as e:
        jp(deploy, [{"op": "replace", "path": "/spec/replicas", "value": 9},
                    {"op": "test", "path": "/spec/replicas", "value": 2}])
    assert e.value.code == 422 and e.value.status()["reason"] == "Invalid"
    assert deploy["spec"]["replicas"] == 2


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/metadata/annotations/missing"}],
    [{"op": "replace", "path": "/spec/template/spec/containers/7/image", "value": "x"}],
    [{"op": "add", "path": "/nope/deeper", "value": 1}],
])
def test_json_patch_bad_path_is_422(deploy, ops):
    with pytest.raises(APIError) as e:
        jp(deploy, ops)
    assert e.value.code == 422


@pytest.mark.parametrize("body", [b'{"op": "add"}', b'[{"op": "frobnicate", "path": "/a"}]', b'[{"path": "/a"}]',
                                  b'[{"op": "add", "path": "/metadata/labels/x"}]', b"not json"])
def test_json_patch_malformed_is_400(deploy, body):
    with pytest.raises(APIError) as e:
        apply_patch(DEPLOYMENT, deploy, JSON_PATCH, body)
    assert e.value.code == 400


def test_merge_patch_replaces_lists_and_null_deletes(deploy):
    out = apply_patch(DEPLOYMENT, deploy, MERGE_PATCH + "; charset=utf-8", json.dumps(
        {"metadata": {"labels": {"app": None, "tier": "db"}},
         "spec": {"template": {"spec": {"containers": [
             {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]}}}}
    ).encode())
    # The docs: with a JSON merge patch the containers list is replaced, not merged.
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]
    assert out["metadata"]["labels"] == {"tier": "db"}


def test_merge_patch_rfc7386_examples():
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"],
              "content": "This will be unchanged"}
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]}
    assert merge_patch(target, patch) == {"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                                          "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": "foo"}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_configmap_data_merge():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    out = apply_patch(CONFIGMAP, cm, MERGE_PATCH, b'{"data": {"b": null, "c": "3"}}')
    assert out["data"] == {"a": "1", "c": "3"}


def test_patch_may_not_change_kind_but_dropped_kind_comes_back(deploy):
    with pytest.raises(APIError) as e:
        apply_patch(DEPLOYMENT, deploy, MERGE_PATCH, b'{"kind": "StatefulSet"}')
    assert e.value.code == 400 and "kind" in e.value.message
    out = jp(deploy, [{"op": "remove", "path": "/apiVersion"}])
    assert out["apiVersion"] == "apps/v1"


def test_unknown_content_type_is_415_listing_accepted_types(deploy):
    with pytest.raises(APIError) as e:
        apply_patch(DEPLOYMENT, deploy, "application/xml", b"<a/>")
    status = e.value.status()
    assert status["code"] == 415 and status["reason"] == "UnsupportedMediaType"
    for accepted in ("application/json-patch+json", "application/merge-patch+json",
                     "application/strategic-merge-patch+json", "application/apply-patch+yaml"):
        assert accepted in status["message"]
