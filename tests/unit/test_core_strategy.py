"""The API core's per-kind rules: what create/update keep, when generation moves, how a delete is planned."""

import pytest
from multidict import MultiDict

from kfab.api import strategy
from kfab.api.deletion import DeleteOptions, parse_delete_options, plan_deletion
from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY

DEPLOY = REGISTRY.by_kind("apps/v1", "Deployment")
POD = REGISTRY.by_kind("v1", "Pod")
CM = REGISTRY.by_kind("v1", "ConfigMap")
NS = REGISTRY.by_kind("v1", "Namespace")


def created(rt, obj, namespace="default"):
    return strategy.prepare_create(rt, obj, namespace if rt.namespaced else None)


def test_create_ignores_server_owned_fields_and_status():
    obj = created(DEPLOY, {"metadata": {"name": "d", "uid": "mine", "resourceVersion": "7", "generation": 9},
                           "spec": {"replicas": 2}, "status": {"replicas": 5}})
    meta = obj["metadata"]
    assert meta["uid"] != "mine" and "resourceVersion" not in meta and meta["generation"] == 1
    assert obj["status"] == {} and meta["namespace"] == "default"


def test_update_keeps_status_and_bumps_generation_only_on_spec_change():
    old = dict(created(DEPLOY, {"metadata": {"name": "d"}, "spec": {"replicas": 1}}), status={"replicas": 1})
    old["metadata"]["resourceVersion"] = "5"
    relabelled = strategy.prepare_update(DEPLOY, {"metadata": {"name": "d", "labels": {"a": "b"}},
                                                  "spec": {"replicas": 1}, "status": {"replicas": 99}}, old)
    assert relabelled["metadata"]["generation"] == 1 and relabelled["status"] == {"replicas": 1}
    assert relabelled["metadata"]["uid"] == old["metadata"]["uid"]
    scaled = strategy.prepare_update(DEPLOY, {"metadata": {"name": "d"}, "spec": {"replicas": 3}}, old)
    assert scaled["metadata"]["generation"] == 2


def test_update_of_a_kind_without_status_subresource_takes_everything():
    old = created(CM, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    new = strategy.prepare_update(CM, {"metadata": {"name": "c"}, "data": {"a": "2"}}, old)
    assert new["data"] == {"a": "2"} and "generation" not in new["metadata"]


def test_status_update_changes_only_status():
    old = created(DEPLOY, {"metadata": {"name": "d"}, "spec": {"replicas": 1}})
    new = strategy.prepare_status_update(DEPLOY, {"metadata": {"name": "d", "labels": {"x": "y"}},
                                                  "spec": {"replicas": 7}, "status": {"replicas": 1}}, old)
    assert new["spec"] == {"replicas": 1} and new["status"] == {"replicas": 1} and "labels" not in new["metadata"]


def test_name_or_generate_name_is_required():
    with pytest.raises(APIError) as e:
        created(CM, {"metadata": {}})
    assert e.value.code == 422 and e.value.causes[0].field == "metadata.name"


def test_generated_names_use_kubernetes_alphabet():
    name = strategy.generate_name("web-")
    assert name.startswith("web-") and len(name) == 9 and set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_new_namespace_has_the_kubernetes_finalizer():
    ns = created(NS, {"metadata": {"name": "n"}, "spec": {"finalizers": []}})
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"] == {"phase": "Active"}


def bound_pod(**spec):
    pod = created(POD, {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", **spec}})
    pod["metadata"]["resourceVersion"] = "3"
    return pod


def test_plain_object_is_deleted_at_once():
    assert plan_deletion(CM, created(CM, {"metadata": {"name": "c"}}), DeleteOptions()) is None


def test_finalizers_hold_an_object():
    marked = plan_deletion(CM, created(CM, {"metadata": {"name": "c", "finalizers": ["x/y"]}}), DeleteOptions())
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 0


@pytest.mark.parametrize("policy, finalizer", [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
def test_propagation_policy_adds_its_finalizer(policy, finalizer):
    marked = plan_deletion(DEPLOY, created(DEPLOY, {"metadata": {"name": "d"}}), DeleteOptions(propagation=policy))
    assert marked["metadata"]["finalizers"] == [finalizer] and marked["metadata"]["generation"] == 2


def test_pod_on_a_node_gets_its_grace_period():
    marked = plan_deletion(POD, bound_pod(terminationGracePeriodSeconds=10), DeleteOptions())
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 10
    again = plan_deletion(POD, marked, DeleteOptions(grace_period=0))
    assert again is None


def test_unscheduled_or_finished_pod_goes_at_once():
    assert plan_deletion(POD, created(POD, {"metadata": {"name": "p"}, "spec": {}}), DeleteOptions()) is None
    done = bound_pod()
    done["status"] = {"phase": "Succeeded"}
    assert plan_deletion(POD, done, DeleteOptions()) is None


def test_delete_options_from_query_and_body():
    opts = parse_delete_options(MultiDict({"gracePeriodSeconds": "5"}),
                                b'{"kind":"DeleteOptions","propagationPolicy":"Foreground",'
                                b'"preconditions":{"uid":"u1"}}')
    assert (opts.grace_period, opts.propagation, opts.uid) == (5, "Foreground", "u1")
    assert parse_delete_options(MultiDict({"orphanDependents": "true"}), b"").propagation == "Orphan"
    with pytest.raises(APIError) as e:
        parse_delete_options(MultiDict({"propagationPolicy": "Sometimes"}), b"")
    assert e.value.code == 422
