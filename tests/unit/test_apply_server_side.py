"""Server-side apply: merge, field ownership in managedFields, conflicts and their Status, like kube-apiserver."""

import copy
from pathlib import Path

import pytest
import yaml

from kfab.api.apply import parse_apply_body, record_update, server_side_apply
from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY

DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
CONFIGMAP = REGISTRY.by_kind("v1", "ConfigMap")

# The docs' Deployment (concepts/workloads/controllers/deployment), as the API tests apply it.
NGINX = yaml.safe_load((Path(__file__).parents[1] / "api" / "manifests" / "nginx-deployment.yaml").read_text())


def entries(obj):
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def stored(obj, rv="1"):
    """What the API core stores: the object plus system metadata the apply must keep."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u-1", resourceVersion=rv, creationTimestamp="2026-01-01T00:00:00Z", namespace="default")
    return out


def with_containers(config, containers):
    config = copy.deepcopy(config)
    config["spec"]["template"]["spec"]["containers"] = containers
    return config


def test_create_records_the_apply_entry_kube_apiserver_records():
    obj = server_side_apply(DEPLOYMENT, None, copy.deepcopy(NGINX), "kubectl", now="2026-11-27T19:00:00Z")
    assert obj["spec"] == NGINX["spec"] and obj["metadata"]["name"] == "nginx-deployment"
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-11-27T19:00:00Z",
        "fieldsType": "FieldsV1", "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    }}},
                },
            },
        },
    }]


def test_reapply_changes_one_container_and_keeps_system_metadata():
    live = stored(server_side_apply(DEPLOYMENT, None, copy.deepcopy(NGINX), "kubectl"))
    config = with_containers(NGINX, [{"name": "nginx", "image": "nginx:1.16.1", "ports": [{"containerPort": 80}]}])
    out = server_side_apply(DEPLOYMENT, live, config, "kubectl")
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.16.1", "ports": [{"containerPort": 80}]}]
    assert out["metadata"]["uid"] == "u-1" and out["metadata"]["resourceVersion"] == "1"
    assert list(entries(out)) == [("kubectl", "Apply")]


def test_fields_dropped_from_the_configuration_are_removed():
    config = with_containers(NGINX, NGINX["spec"]["template"]["spec"]["containers"] + [
        {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}])
    config["metadata"]["labels"]["tier"] = "web"
    live = stored(server_side_apply(DEPLOYMENT, None, config, "kubectl"))
    out = server_side_apply(DEPLOYMENT, live, copy.deepcopy(NGINX), "kubectl")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert out["metadata"]["labels"] == {"app": "nginx"}
    assert "sidecar" not in str(out["metadata"]["managedFields"])


def test_fields_another_manager_owns_survive_when_the_applier_drops_them():
    config = copy.deepcopy(NGINX)
    config["metadata"]["labels"]["tier"] = "web"
    live = stored(server_side_apply(DEPLOYMENT, None, config, "kubectl"))
    # Someone else sets the same label (same value): shared ownership.
    other = copy.deepcopy(NGINX)
    other["metadata"]["labels"] = {"tier": "web"}
    del other["spec"]
    live = stored(server_side_apply(DEPLOYMENT, live, other, "team-b"))
    out = server_side_apply(DEPLOYMENT, live, copy.deepcopy(NGINX), "kubectl")
    assert out["metadata"]["labels"] == {"app": "nginx", "tier": "web"}
    assert entries(out)[("team-b", "Apply")]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}


def test_conflict_with_an_update_manager_then_force_takes_the_field():
    created = record_update(None, stored(NGINX), "kubectl-client-side-apply", "2026-11-27T18:00:00Z")
    config = copy.deepcopy(NGINX)
    config["spec"]["replicas"] = 5
    with pytest.raises(APIError) as e:
        server_side_apply(DEPLOYMENT, created, config, "kubectl", force=False)
    status = e.value.status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                                 "using apps/v1: .spec.replicas")
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                            "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]

    out = server_side_apply(DEPLOYMENT, created, config, "kubectl", force=True)
    assert out["spec"]["replicas"] == 5
    csa = entries(out)[("kubectl-client-side-apply", "Update")]["fieldsV1"]
    assert "f:replicas" not in csa["f:spec"] and "f:selector" in csa["f:spec"]
    assert "f:replicas" in entries(out)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_applying_the_same_value_shares_ownership_without_conflict():
    created = record_update(None, stored(NGINX), "kubectl-create")
    out = server_side_apply(DEPLOYMENT, created, copy.deepcopy(NGINX), "kubectl")
    assert "f:replicas" in entries(out)[("kubectl-create", "Update")]["fieldsV1"]["f:spec"]
    assert "f:replicas" in entries(out)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_several_conflicts_are_listed_per_manager():
    live = stored(server_side_apply(DEPLOYMENT, None, copy.deepcopy(NGINX), "ops"))
    config = with_containers(NGINX, [{"name": "nginx", "image": "nginx:2", "ports": [{"containerPort": 80}]}])
    config["spec"]["replicas"] = 1
    with pytest.raises(APIError) as e:
        server_side_apply(DEPLOYMENT, live, config, "dev")
    message = e.value.message
    assert message.startswith('Apply failed with 2 conflicts: conflicts with "ops":\n- ')
    assert '- .spec.template.spec.containers[name="nginx"].image' in message and "- .spec.replicas" in message
    assert {c.field for c in e.value.causes} == {".spec.replicas", '.spec.template.spec.containers[name="nginx"].image'}


def test_list_items_merge_by_key_keeping_other_managers_items():
    live = stored(server_side_apply(DEPLOYMENT, None, copy.deepcopy(NGINX), "kubectl"))
    sidecar = copy.deepcopy(NGINX)
    sidecar["metadata"] = {"name": "nginx-deployment"}
    sidecar["spec"] = {"template": {"spec": {"containers": [{"name": "log", "image": "busybox"}]}}}
    out = server_side_apply(DEPLOYMENT, live, sidecar, "logging")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx", "log"]
    # kubectl re-applies its config: the logging container is not its own, so it stays.
    out = server_side_apply(DEPLOYMENT, stored(out, "2"), copy.deepcopy(NGINX), "kubectl")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx", "log"]


def test_status_in_the_configuration_is_ignored():
    live = stored(NGINX)
    live["status"] = {"replicas": 3}
    config = copy.deepcopy(NGINX)
    config["status"] = {"replicas": 99}
    out = server_side_apply(DEPLOYMENT, live, config, "kubectl")
    assert out["status"] == {"replicas": 3}
    assert "f:status" not in entries(out)[("kubectl", "Apply")]["fieldsV1"]


def test_null_in_the_configuration_removes_the_field():
    live = stored(NGINX)
    config = copy.deepcopy(NGINX)
    config["spec"]["replicas"] = None
    out = server_side_apply(DEPLOYMENT, live, config, "kubectl")
    assert "replicas" not in out["spec"]


def test_yaml_and_json_bodies():
    body = yaml.safe_dump(NGINX).encode()
    assert server_side_apply(DEPLOYMENT, None, body, "kubectl")["spec"]["replicas"] == 3
    assert parse_apply_body(b'{"apiVersion": "v1", "kind": "ConfigMap"}') == {"apiVersion": "v1", "kind": "ConfigMap"}


@pytest.mark.parametrize("body, manager, words", [
    (b"apiVersion: [unclosed", "kubectl", "error decoding YAML"),
    (b"- just\n- a list\n", "kubectl", "must be an object"),
    (b"apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n", "kubectl", "Incorrect version"),
    (b"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\n", "kubectl", "StatefulSet"),
    (b"kind: Deployment\nmetadata: {name: x}\n", "kubectl", "apiVersion and kind"),
    (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, managedFields: [{manager: m}]}\n", "kubectl",
     "managedFields must be nil"),
    (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "", "fieldManager is required"),
])
def test_bad_apply_requests_are_400(body, manager, words):
    with pytest.raises(APIError) as e:
        server_side_apply(DEPLOYMENT, None, body, manager)
    assert e.value.code == 400 and words in e.value.message


def test_record_update_on_create_owns_what_was_set():
    obj = record_update(None, {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "c", "labels": {"a": "1"}, "uid": "x"}, "data": {"k": "v"}},
                        "kubectl-create", "2026-11-27T19:00:00Z")
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-11-27T19:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}]


def test_record_update_moves_changed_fields_and_keeps_time_on_no_op():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    v1 = record_update(None, cm, "creator", "2026-11-27T19:00:00Z")
    changed = copy.deepcopy(v1)
    changed["data"]["a"] = "9"
    v2 = record_update(v1, changed, "editor", "2026-11-27T19:05:00Z")
    assert entries(v2)[("creator", "Update")]["fieldsV1"] == {"f:data": {".": {}, "f:b": {}}}
    assert entries(v2)[("editor", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    same = record_update(v2, copy.deepcopy(v2), "editor", "2026-11-27T20:00:00Z")
    assert entries(same)[("editor", "Update")]["time"] == "2026-11-27T19:05:00Z"
    # Removing a key drops it from its owner.
    removed = copy.deepcopy(v2)
    del removed["data"]["b"]
    v3 = record_update(v2, removed, "editor", "2026-11-27T19:10:00Z")
    assert ("creator", "Update") in entries(v3)  # still owns data itself
    assert entries(v3)[("creator", "Update")]["fieldsV1"] == {"f:data": {}}


def test_record_update_honours_managed_fields_the_client_sends():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    v1 = record_update(None, cm, "creator")
    reset = copy.deepcopy(v1)
    reset["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in record_update(v1, reset, "creator")["metadata"]
    migrated = copy.deepcopy(v1)
    migrated["metadata"]["managedFields"] = [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-11-27T19:00:00Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]
    out = record_update(v1, migrated, "kubectl-client-side-apply")
    assert list(entries(out)) == [("kubectl", "Apply")]
    cleared = copy.deepcopy(v1)
    cleared["metadata"]["managedFields"] = []
    assert entries(record_update(v1, cleared, "x")) == entries(v1)


def test_list_order_follows_the_configuration_for_shared_items():
    # structured-merge-diff's merge: shared items in configuration order, live-only items where they were.
    live = stored(with_containers(NGINX, [{"name": n, "image": n} for n in ("a", "b", "c")]))
    config = with_containers(NGINX, [{"name": "c", "image": "c2"}, {"name": "a", "image": "a"}])
    out = server_side_apply(DEPLOYMENT, live, config, "reorder", force=True)
    assert [(c["name"], c["image"]) for c in out["spec"]["template"]["spec"]["containers"]] == [
        ("b", "b"), ("c", "c2"), ("a", "a")]


def test_dropping_every_label_removes_them_and_reports_the_removal():
    config = copy.deepcopy(NGINX)
    config["metadata"]["labels"] = {"app": "nginx", "tier": "web"}
    live = stored(server_side_apply(DEPLOYMENT, None, config, "kubectl"))
    shared = record_update(live, live, "other")  # no change: records nothing for "other"
    assert ("other", "Update") not in entries(shared)
    del config["metadata"]["labels"]
    out = server_side_apply(DEPLOYMENT, live, config, "kubectl")
    assert "labels" not in out["metadata"]
    assert live["metadata"]["labels"] == {"app": "nginx", "tier": "web"}, "the live object is not modified"


def test_a_no_op_reapply_keeps_managed_fields_unchanged():
    live = stored(server_side_apply(DEPLOYMENT, None, copy.deepcopy(NGINX), "kubectl", now="2026-11-27T19:00:00Z"))
    again = server_side_apply(DEPLOYMENT, live, copy.deepcopy(NGINX), "kubectl", now="2026-11-27T20:00:00Z")
    assert again == live
    changed = copy.deepcopy(NGINX)
    changed["spec"]["replicas"] = 4
    out = server_side_apply(DEPLOYMENT, live, changed, "kubectl", now="2026-11-27T20:00:00Z")
    assert entries(out)[("kubectl", "Apply")]["time"] == "2026-11-27T20:00:00Z"


def test_first_apply_to_an_object_without_owners_conflicts_with_before_first_apply():
    live = stored(NGINX)  # e.g. stored before field ownership was tracked
    config = copy.deepcopy(NGINX)
    config["spec"]["replicas"] = 1
    with pytest.raises(APIError) as e:
        server_side_apply(DEPLOYMENT, live, config, "kubectl")
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: '
                               ".spec.replicas")
    out = server_side_apply(DEPLOYMENT, live, copy.deepcopy(NGINX), "kubectl")
    assert set(entries(out)) == {("kubectl", "Apply"), ("before-first-apply", "Update")}


def test_default_field_manager_comes_from_the_user_agent():
    from kfab.api.apply import default_field_manager
    assert default_field_manager("kubectl/v1.37.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert default_field_manager("OpenAPI-Generator/37.0.2/python") == "OpenAPI-Generator"
    assert default_field_manager(None) == "unknown"


def test_dropping_an_item_keeps_what_another_manager_changed_in_it():
    config = with_containers(NGINX, NGINX["spec"]["template"]["spec"]["containers"] + [
        {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}])
    live = stored(server_side_apply(DEPLOYMENT, None, config, "kubectl"))
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = "busybox:1.36"
    live = record_update(live, edited, "kubectl-edit")
    out = server_side_apply(DEPLOYMENT, live, copy.deepcopy(NGINX), "kubectl", force=True)
    # kubectl no longer applies the sidecar: its own fields go, the editor's image stays with the item's key.
    assert out["spec"]["template"]["spec"]["containers"][1] == {"name": "sidecar", "image": "busybox:1.36"}
