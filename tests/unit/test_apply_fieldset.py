"""FieldsV1 encoding and the field sets server-side apply computes from objects."""

from kfab.api.fieldset import compare, display, fields_of, from_fields_v1, to_fields_v1
from kfab.api.patch_schema import Field
from kfab.objects.registry import REGISTRY

POD = Field.for_kind(REGISTRY.by_kind("v1", "Pod"))


def test_fields_v1_round_trip_marks_members_with_children():
    paths = {("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:app"), ("f:spec", "f:nodeName")}
    encoded = to_fields_v1(paths)
    assert encoded == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:nodeName": {}}}
    assert from_fields_v1(encoded) == paths


def test_paths_print_like_kube_apiserver():
    assert display(("f:spec", "f:containers", 'k:{"name":"app"}', "f:image")) == '.spec.containers[name="app"].image'
    assert display(("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}')) == '.spec.ports[port=80,protocol="TCP"]'
    assert display(("f:metadata", "f:finalizers", 'v:"a/b"')) == '.metadata.finalizers[="a/b"]'


def test_pod_fields_use_list_keys_sets_and_atomic_lists():
    pod = {"metadata": {"labels": {"app": "x"}, "finalizers": ["a/b"]},
           "spec": {"containers": [{"name": "c", "image": "i", "args": ["sleep", "1"],
                                    "ports": [{"containerPort": 53, "protocol": "UDP"}],
                                    "resources": {}}],
                    "nodeSelector": {"disk": "ssd"}}}
    assert to_fields_v1(fields_of(pod, POD)) == {
        "f:metadata": {"f:finalizers": {'v:"a/b"': {}}, "f:labels": {"f:app": {}}},
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': {
                ".": {}, "f:args": {}, "f:image": {}, "f:name": {}, "f:resources": {},
                "f:ports": {'k:{"containerPort":53,"protocol":"UDP"}': {
                    ".": {}, "f:containerPort": {}, "f:protocol": {}}},
            }},
            "f:nodeSelector": {},  # x-kubernetes-map-type: atomic in the published schema
        },
    }


def test_compare_reports_added_modified_removed():
    old = {"spec": {"containers": [{"name": "c", "image": "1"}, {"name": "gone", "image": "g"}]}}
    new = {"spec": {"containers": [{"name": "c", "image": "2"}, {"name": "new", "image": "n"}]}}
    diff = compare(old, new, POD)
    base = ("f:spec", "f:containers")
    assert diff.modified == {base + ('k:{"name":"c"}', "f:image")}
    assert base + ('k:{"name":"new"}',) in diff.added and base + ('k:{"name":"new"}', "f:image") in diff.added
    assert base + ('k:{"name":"gone"}',) in diff.removed
