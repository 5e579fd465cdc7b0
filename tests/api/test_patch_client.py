"""Patch and server-side apply through the official Python client: Status bodies as kube-apiserver sends them."""

import json

import pytest
from kubernetes import client

APPLY = "application/apply-patch+yaml"


def test_server_side_apply_conflict_status_and_force(k8s, namespace):
    api = client.CoreV1Api(k8s)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "a"}}
    api.patch_namespaced_config_map("settings", namespace, body, field_manager="team-a", _content_type=APPLY)
    body["data"]["mode"] = "b"
    with pytest.raises(client.ApiException) as e:
        api.patch_namespaced_config_map("settings", namespace, body, field_manager="team-b", _content_type=APPLY)
    status = json.loads(e.value.body)
    assert e.value.status == 409 and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "team-a": .data.mode'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "team-a"', "field": ".data.mode"}]
    assert api.read_namespaced_config_map("settings", namespace).data == {"mode": "a"}

    out = api.patch_namespaced_config_map("settings", namespace, body, field_manager="team-b", force=True,
                                          _content_type=APPLY)
    assert out.data == {"mode": "b"}
    owners = {m.manager: m.fields_v1 for m in out.metadata.managed_fields}
    assert owners["team-b"] == {"f:data": {"f:mode": {}}} and "team-a" not in owners


def test_patch_types_through_the_client(k8s, namespace):
    api = client.CoreV1Api(k8s)
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "c", "labels": {"a": "1"}},
                                                 "data": {"x": "1", "y": "2"}})
    out = api.patch_namespaced_config_map("c", namespace, [{"op": "remove", "path": "/data/x"}])  # JSON patch
    assert out.data == {"y": "2"}
    out = api.patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"a": None, "b": "2"}}},
                                          _content_type="application/merge-patch+json")
    assert out.metadata.labels == {"b": "2"}
    with pytest.raises(client.ApiException) as e:
        api.patch_namespaced_config_map("c", namespace, [{"op": "test", "path": "/data/y", "value": "nope"}])
    assert e.value.status == 422 and json.loads(e.value.body)["kind"] == "Status"


def test_unsupported_patch_content_type_is_415(k8s, namespace):
    client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    url = f"{k8s.configuration.host}/api/v1/namespaces/{namespace}/configmaps/c"
    response = k8s.call_api("PATCH", url, header_params={"Content-Type": "text/plain", "Accept": "application/json"},
                            body="data: {}")
    status = json.loads(response.read())
    assert response.status == 415 and status["reason"] == "UnsupportedMediaType"
    assert "application/strategic-merge-patch+json" in status["message"]
