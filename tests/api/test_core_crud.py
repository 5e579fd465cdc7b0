"""CRUD through the official Python client: what a program using `kubernetes` relies on."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client import ApiException


def body_of(e: ApiException) -> dict:
    return json.loads(e.body)


def test_create_fills_server_metadata(k8s, namespace):
    core = client.CoreV1Api(k8s)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    assert cm.metadata.uid and cm.metadata.creation_timestamp
    assert cm.metadata.namespace == namespace
    assert int(cm.metadata.resource_version) > 0
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "1"}


def test_generate_name_gives_unique_names(k8s, namespace):
    core = client.CoreV1Api(k8s)
    names = {core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "job-"}}).metadata.name
             for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("job-") and len(n) == len("job-") + 5 for n in names)


def test_create_twice_is_409_already_exists(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "once"}})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "once"}})
    assert e.value.status == 409
    assert body_of(e.value)["reason"] == "AlreadyExists"


def test_get_missing_is_404_status(k8s, namespace):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(k8s).read_namespaced_secret("nope", namespace)
    status = body_of(e.value)
    assert (e.value.status, status["kind"], status["reason"]) == (404, "Status", "NotFound")
    assert status["message"] == 'secrets "nope" not found'


def test_update_with_stale_resource_version_is_409_and_changes_nothing(k8s, namespace):
    core = client.CoreV1Api(k8s)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"v": "1"}})
    first.data = {"v": "2"}
    second = core.replace_namespaced_config_map("cfg", namespace, first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"v": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("cfg", namespace, first)
    assert e.value.status == 409 and body_of(e.value)["reason"] == "Conflict"
    assert core.read_namespaced_config_map("cfg", namespace).data == {"v": "2"}


def test_update_without_resource_version_is_unconditional(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"v": "1"}})
    core.replace_namespaced_config_map("cfg", namespace, {"metadata": {"name": "cfg"}, "data": {"v": "9"}})
    assert core.read_namespaced_config_map("cfg", namespace).data == {"v": "9"}


def test_noop_update_keeps_resource_version(k8s, namespace):
    core = client.CoreV1Api(k8s)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "same"}, "data": {"v": "1"}})
    again = core.replace_namespaced_config_map("same", namespace, cm)
    assert again.metadata.resource_version == cm.metadata.resource_version


def test_generation_bumps_on_spec_change_only(k8s, namespace):
    apps = client.AppsV1Api(k8s)
    dep = apps.create_namespaced_deployment(namespace, deployment("web"))
    assert dep.metadata.generation == 1
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"labels": {"team": "a"}}})
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 1
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 2


def test_status_is_ignored_on_main_resource_and_taken_on_status(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_service(namespace, {"metadata": {"name": "lb"},
                                               "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    core.patch_namespaced_service("lb", namespace, ingress)
    assert core.read_namespaced_service("lb", namespace).status.load_balancer.ingress is None
    core.patch_namespaced_service_status("lb", namespace, dict(ingress, spec={"selector": {"app": "changed"}}))
    svc = core.read_namespaced_service("lb", namespace)
    assert svc.status.load_balancer.ingress[0].ip == "192.0.2.10"
    assert svc.spec.selector == {"app": "x"}


def test_body_namespace_must_match_path(k8s, namespace):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"metadata": {"name": "x",
                                                                                     "namespace": "other"}})
    assert e.value.status == 400
    assert "does not match the namespace" in body_of(e.value)["message"]


# Every namespace holds the root-ca-cert-publisher's ConfigMap, as in Kubernetes: lists leave it out.
ROOT_CA = "kube-root-ca.crt"


def config_map_names(core, namespace: str, **kw) -> list[str]:
    return [c.metadata.name for c in core.list_namespaced_config_map(namespace, **kw).items
            if c.metadata.name != ROOT_CA]


def test_wrong_kind_for_endpoint_is_400(k8s, namespace):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"apiVersion": "v1", "kind": "Secret",
                                                                       "metadata": {"name": "x"}})
    assert e.value.status == 400
    assert config_map_names(client.CoreV1Api(k8s), namespace) == []


def test_dry_run_stores_nothing(k8s, namespace):
    core = client.CoreV1Api(k8s)
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}}, dry_run="All")
    assert made.metadata.name == "dry"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("dry", namespace)
    assert e.value.status == 404


def test_list_selectors_and_resource_version(k8s, namespace):
    core = client.CoreV1Api(k8s)
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"tier": tier}}})
    listed = core.list_namespaced_config_map(namespace)
    assert [c.metadata.name for c in listed.items if c.metadata.name != ROOT_CA] == ["a", "b", "c"]
    assert int(listed.metadata.resource_version) >= max(int(c.metadata.resource_version) for c in listed.items)
    names = lambda **kw: config_map_names(core, namespace, **kw)  # noqa
    assert names(label_selector="tier=web") == ["a", "b"]
    assert names(label_selector="tier!=web") == ["c"]
    assert names(label_selector="tier in (db,cache)") == ["c"]
    assert names(label_selector="tier notin (db)") == ["a", "b"]
    assert names(label_selector="tier") == ["a", "b", "c"]
    assert names(label_selector="!tier") == []
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]


def test_list_pages_with_limit_and_continue(k8s, namespace):
    core = client.CoreV1Api(k8s)
    for i in range(7):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{i}"}})
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        seen += [c.metadata.name for c in page.items if c.metadata.name != ROOT_CA]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"cm-{i}" for i in range(7)] and pages == 3


def test_all_namespaces_list(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "everywhere"}})
    found = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert [(c.metadata.namespace, c.metadata.name) for c in found.items if c.metadata.name != ROOT_CA] == \
        [(namespace, "everywhere")]


def test_pod_field_selectors_on_node_and_phase(k8s, namespace):
    core = client.CoreV1Api(k8s)
    for name in ("p1", "p2"):
        core.create_namespaced_pod(namespace, pod(name))
    bind(k8s, namespace, "p1", "node-a")
    core.patch_namespaced_pod_status("p1", namespace, {"status": {"phase": "Running"}})
    names = lambda sel: [p.metadata.name for p in core.list_namespaced_pod(namespace, field_selector=sel).items]  # noqa
    assert names("spec.nodeName=node-a") == ["p1"]
    assert names("spec.nodeName=") == ["p2"]
    assert names("status.phase=Running") == ["p1"]
    assert names("status.phase=Pending") == ["p2"]


def test_binding_sets_node_once(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod("p"))
    bind(k8s, namespace, "p", "node-a")
    got = core.read_namespaced_pod("p", namespace)
    assert got.spec.node_name == "node-a"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in got.status.conditions)
    with pytest.raises(ApiException) as e:
        bind(k8s, namespace, "p", "node-b")
    assert e.value.status == 409
    assert core.read_namespaced_pod("p", namespace).spec.node_name == "node-a"


def test_scale_subresource(k8s, namespace):
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_stateful_set(namespace, statefulset("db"))
    scale = apps.read_namespaced_stateful_set_scale("db", namespace)
    assert (scale.spec.replicas, scale.status.selector) == (1, "app=db")
    apps.replace_namespaced_stateful_set_scale("db", namespace, {"metadata": {"name": "db"}, "spec": {"replicas": 4}})
    assert apps.read_namespaced_stateful_set("db", namespace).spec.replicas == 4
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_stateful_set_scale("db", namespace, {"spec": {"replicas": -1}})
    assert e.value.status == 422


def test_delete_with_finalizer_waits_until_it_is_removed(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    core.delete_namespaced_config_map("held", namespace)
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("held", namespace)
    assert e.value.status == 404


def test_foreground_and_orphan_propagation_set_gc_finalizers(k8s, namespace):
    """The API marks the object (deletionTimestamp + the policy's finalizer); the garbage collector in
    kfab server then finishes the delete."""
    apps = client.AppsV1Api(k8s)
    for name, policy, finalizer in (("fg", "Foreground", "foregroundDeletion"), ("or", "Orphan", "orphan")):
        made = apps.create_namespaced_deployment(namespace, deployment(name))
        apps.delete_namespaced_deployment(name, namespace, propagation_policy=policy)
        seen = watch_events(k8s, namespace, made.metadata.resource_version, f"metadata.name={name}")
        # (the deployment controller may write status first: look for the first event of the delete)
        marked = next(obj for kind, obj in seen if obj.metadata.deletion_timestamp is not None)
        assert finalizer in marked.metadata.finalizers
        assert seen[-1][0] == "DELETED"
    made = apps.create_namespaced_deployment(namespace, deployment("bg"))
    apps.delete_namespaced_deployment("bg", namespace, propagation_policy="Background")
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("bg", namespace)


def test_graceful_pod_delete_on_a_node(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod("unbound"))
    core.delete_namespaced_pod("unbound", namespace)  # no node runs it: gone at once
    assert core.list_namespaced_pod(namespace).items == []
    core.create_namespaced_pod(namespace, pod("bound"))
    bind(k8s, namespace, "bound", "node-a")
    core.delete_namespaced_pod("bound", namespace)
    marked = core.read_namespaced_pod("bound", namespace)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("bound", namespace, grace_period_seconds=0)  # what the node agent does at the end
    assert core.list_namespaced_pod(namespace).items == []


def test_delete_preconditions(k8s, namespace):
    core = client.CoreV1Api(k8s)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}})
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("pre", namespace, body={"preconditions": {"uid": "not-it"}})
    assert e.value.status == 409
    core.delete_namespaced_config_map("pre", namespace, body={"preconditions": {"uid": cm.metadata.uid}})


def test_delete_collection_by_label(k8s, namespace):
    core = client.CoreV1Api(k8s)
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"tier": tier}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="tier=web")
    assert config_map_names(core, namespace) == ["c"]


def test_namespace_delete_marks_it_terminating_until_emptied(k8s):
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": "going-away"}})
    # a finalizer holds this object, and so the namespace, until the test removes it
    core.create_namespaced_config_map("going-away", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    core.delete_namespace("going-away")
    ns = core.read_namespace("going-away")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("going-away", {"metadata": {"name": "late"}})
    assert e.value.status == 403
    assert "because it is being terminated" in body_of(e.value)["message"]
    core.patch_namespaced_config_map("held", "going-away", {"metadata": {"finalizers": None}})
    wait_gone(lambda: core.read_namespace("going-away"))


def test_namespace_finalize_subresource(k8s):
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": "finalize-me"}})
    ns = core.replace_namespace_finalize("finalize-me", {"metadata": {"name": "finalize-me"},
                                                         "spec": {"finalizers": ["example.com/keep"]}})
    assert ns.spec.finalizers == ["example.com/keep"]
    core.replace_namespace_finalize("finalize-me", {"metadata": {"name": "finalize-me"}, "spec": {"finalizers": []}})
    core.delete_namespace("finalize-me")  # nothing holds it: gone at once
    wait_gone(lambda: core.read_namespace("finalize-me"))


def test_system_namespaces_exist(k8s):
    names = {n.metadata.name for n in client.CoreV1Api(k8s).list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


# --- helpers -------------------------------------------------------------------------------------

def deployment(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}}


def statefulset(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}


def pod(name: str) -> dict:
    # A scheduler name nobody serves: these tests bind pods themselves, kfab server's scheduler leaves them be.
    return {"metadata": {"name": name}, "spec": {"schedulerName": "tests-bind-by-hand",
                                                 "containers": [{"name": "c", "image": "busybox"}]}}


def watch_events(k8s, namespace: str, resource_version: str, field_selector: str, timeout: int = 30):
    """Deployment events after resource_version until the object is DELETED (or the timeout)."""
    from kubernetes import watch

    seen = []
    w = watch.Watch()
    for e in w.stream(client.AppsV1Api(k8s).list_namespaced_deployment, namespace, field_selector=field_selector,
                      resource_version=resource_version, timeout_seconds=timeout):
        seen.append((e["type"], e["object"]))
        if e["type"] == "DELETED":
            w.stop()
    return seen


def wait_gone(read, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            read()
        except ApiException as e:
            if e.status == 404:
                return
            raise
        time.sleep(0.1)
    raise AssertionError(f"still there after {deadline}s")


def bind(k8s, namespace: str, pod_name: str, node: str) -> None:
    client.CoreV1Api(k8s).create_namespaced_pod_binding(
        pod_name, namespace, {"metadata": {"name": pod_name}, "target": {"kind": "Node", "name": node}},
        _preload_content=False)
