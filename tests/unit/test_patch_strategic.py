"""Strategic merge patch gives the results kube-apiserver gives (cases from the Kubernetes docs
"Update API Objects in Place Using kubectl patch" and apimachinery's strategicpatch semantics)."""

import copy
import json

import pytest

from kfab.objects.errors import APIError
from kfab.api.patch import STRATEGIC_MERGE_PATCH, apply_patch
from kfab.objects.registry import REGISTRY

DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
SERVICE = REGISTRY.by_kind("v1", "Service")
POD = REGISTRY.by_kind("v1", "Pod")


def smp(rt, original, patch):
    return apply_patch(rt, original, STRATEGIC_MERGE_PATCH, json.dumps(patch).encode())


@pytest.fixture
def patch_demo():
    """deployment-patch.yaml from the kubectl patch task page."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "patch-demo", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                    "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
                },
            },
        },
    }


@pytest.fixture
def web():
    """A Deployment with env, ports and volumes, as users write them."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["example.com/a", "example.com/b"]},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "app", "image": "nginx:1.25",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }, {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "web"}}],
                },
            },
        },
    }


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_adding_a_container_merges_by_name_like_the_docs_show(patch_demo):
    out = smp(DEPLOYMENT, patch_demo, {"spec": {"template": {"spec": {"containers": [
        {"name": "patch-demo-ctr-2", "image": "redis"}]}}}})
    # The docs' output lists the patched-in container first, then the server's one.
    assert containers(out) == [{"name": "patch-demo-ctr-2", "image": "redis"},
                               {"name": "patch-demo-ctr", "image": "nginx"}]


def test_tolerations_have_no_merge_strategy_so_the_patch_replaces_them(patch_demo):
    out = smp(DEPLOYMENT, patch_demo, {"spec": {"template": {"spec": {"tolerations": [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}})
    assert out["spec"]["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]


def test_retain_keys_clears_rolling_update_when_switching_to_recreate(patch_demo):
    out = smp(DEPLOYMENT, patch_demo, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # Without the directive the rollingUpdate block stays (and validation would then reject it).
    out = smp(DEPLOYMENT, patch_demo, {"spec": {"strategy": {"type": "Recreate"}}})
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}


def test_retain_keys_rejects_a_patch_field_it_does_not_list(patch_demo):
    with pytest.raises(APIError) as e:
        smp(DEPLOYMENT, patch_demo, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                                           "rollingUpdate": {"maxSurge": 1}}}})
    assert e.value.code == 400 and "rollingUpdate" in e.value.message


def test_changing_one_env_var_keeps_the_others_in_place(web):
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "two"}]}]}}}})
    app = containers(out)[0]
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]
    assert app["image"] == "nginx:1.25" and containers(out)[1]["name"] == "sidecar"


def test_image_change_touches_only_that_container(web):
    before = copy.deepcopy(web)
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox:1.36"}]}}}})
    assert [c["image"] for c in containers(out)] == ["nginx:1.25", "busybox:1.36"]
    assert containers(out)[1]["args"] == ["sleep", "1d"]
    assert web == before, "the original object must not be modified"


def test_ports_merge_by_container_port(web):
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "ports": [{"containerPort": 443, "name": "tls"}, {"containerPort": 8080}]}]}}}})
    ports = containers(out)[0]["ports"]
    assert {p["containerPort"]: p.get("name") for p in ports} == {80: "http", 443: "tls", 8080: None}
    assert ports[0] == {"containerPort": 80, "name": "http"}


def test_delete_directive_removes_one_list_element(web):
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c["name"] for c in containers(out)] == ["app"]


def test_replace_directive_makes_the_patch_list_the_whole_list(web):
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"volumes": [
        {"name": "cache", "emptyDir": {}}, {"$patch": "replace"}]}}}})
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "cache", "emptyDir": {}}]


def test_replace_directive_on_a_map_replaces_it(web):
    out = smp(DEPLOYMENT, web, {"metadata": {"labels": {"$patch": "replace", "app": "web2"}}})
    assert out["metadata"]["labels"] == {"app": "web2"}


def test_delete_directive_on_a_map_empties_it(web):
    out = smp(DEPLOYMENT, web, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_null_deletes_a_field_and_a_label(web):
    out = smp(DEPLOYMENT, web, {"metadata": {"labels": {"tier": None}}, "spec": {"replicas": None}})
    assert out["metadata"]["labels"] == {"app": "web"}
    assert "replicas" not in out["spec"]


def test_finalizers_union_merge_and_delete_from_primitive_list(web):
    out = smp(DEPLOYMENT, web, {"metadata": {"finalizers": ["example.com/c", "example.com/a"]}})
    assert out["metadata"]["finalizers"] == ["example.com/c", "example.com/a", "example.com/b"]
    out = smp(DEPLOYMENT, web, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}})
    assert out["metadata"]["finalizers"] == ["example.com/b"]


def test_set_element_order_reorders_env_like_kubectl_apply(web):
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{"name": "app", "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]}]}}}}
    out = smp(DEPLOYMENT, web, patch)
    assert [e["name"] for e in containers(out)[0]["env"]] == ["C", "A", "B"]
    assert [c["name"] for c in containers(out)] == ["app", "sidecar"]


def test_set_element_order_with_a_deletion_and_an_addition(web):
    # What kubectl apply sends when the config drops env B and adds D after A.
    patch = {"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "$setElementOrder/env": [{"name": "A"}, {"name": "D"}, {"name": "C"}],
        "env": [{"name": "D", "value": "4"}, {"name": "B", "$patch": "delete"}]}]}}}}
    out = smp(DEPLOYMENT, web, patch)
    assert containers(out)[0]["env"] == [{"name": "A", "value": "1"}, {"name": "D", "value": "4"},
                                         {"name": "C", "value": "3"}]


def test_set_element_order_must_agree_with_the_patch_list(web):
    patch = {"spec": {"template": {"spec": {"containers": [{
        "name": "app", "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "Z", "value": "9"}]}]}}}}
    with pytest.raises(APIError) as e:
        smp(DEPLOYMENT, web, patch)
    assert e.value.code == 400


def test_volume_source_switch_with_retain_keys(web):
    # kubectl apply sends $retainKeys for volumes (patch strategy "merge,retainKeys").
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "data"}}]}}}})
    assert out["spec"]["template"]["spec"]["volumes"][0] == {"name": "data", "configMap": {"name": "data"}}


def test_service_ports_merge_by_port():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [
               {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
               {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}}
    out = smp(SERVICE, svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert out["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}
    assert out["spec"]["ports"][1]["port"] == 443
    # selector is a plain map: keys merge.
    out = smp(SERVICE, svc, {"spec": {"selector": {"tier": "front"}}})
    assert out["spec"]["selector"] == {"app": "web", "tier": "front"}


def test_pod_new_field_is_added_without_directives_or_nulls():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    out = smp(POD, pod, {"spec": {"nodeSelector": {"disk": "ssd", "gone": None},
                                  "containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}})
    assert out["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert out["spec"]["containers"] == [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "1"}}}]


@pytest.mark.parametrize("patch, code, words", [
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, 400, "merge key"),
    ({"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}}}, 400, "merging lists"),
    ({"metadata": {"labels": {"$patch": "bogus"}}}, 400, "unknown patch type"),
    ({"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}, 400, "primitive list"),
    ({"metadata": {"$setElementOrder/finalizers": "x"}}, 400, "setElementOrder"),
    ({"spec": {"template": {"spec": {"containers": [["app"]]}}}}, 422, "lists of lists"),
])
def test_malformed_directives_are_rejected(web, patch, code, words):
    with pytest.raises(APIError) as e:
        smp(DEPLOYMENT, web, patch)
    assert e.value.code == code and words in e.value.message


def test_body_must_be_a_json_object(web):
    with pytest.raises(APIError) as e:
        apply_patch(DEPLOYMENT, web, STRATEGIC_MERGE_PATCH, b'[{"op": "add"}]')
    assert e.value.code == 400
    with pytest.raises(APIError) as e:
        apply_patch(DEPLOYMENT, web, STRATEGIC_MERGE_PATCH, b'{"spec": ')
    assert e.value.code == 400 and "not valid JSON" in e.value.message


def test_primitive_list_order_and_deletion_together(web):
    # kubectl apply's patch when the config's finalizers go from [a, b] to [b, c].
    out = smp(DEPLOYMENT, web, {"metadata": {"$setElementOrder/finalizers": ["example.com/b", "example.com/c"],
                                             "finalizers": ["example.com/c"],
                                             "$deleteFromPrimitiveList/finalizers": ["example.com/a"]}})
    assert out["metadata"]["finalizers"] == ["example.com/b", "example.com/c"]


def test_volume_mounts_merge_by_mount_path_not_by_name(web):
    # Container.volumeMounts has patchMergeKey "mountPath" in the published schema.
    out = smp(DEPLOYMENT, web, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "volumeMounts": [{"mountPath": "/data", "readOnly": True},
                                         {"mountPath": "/etc/web", "name": "conf"}]}]}}}})
    assert containers(out)[0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": True}, {"mountPath": "/etc/web", "name": "conf"}]
