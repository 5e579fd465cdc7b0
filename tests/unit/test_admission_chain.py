"""The admission chain rejects bad input with kube-apiserver's status codes and field paths."""

import copy
import json

import pytest

from kfab.objects.errors import APIError
from kfab.api.admission import AdmissionRequest
from tests.unit.admission_helpers import create_request, kind, open_chain, run, update_request
from tests.unit.test_admission_defaults import NGINX_DEPLOYMENT, WEB_STATEFULSET


def deployment(**changes):
    obj = copy.deepcopy(NGINX_DEPLOYMENT)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = obj
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return obj


_DELETE = object()

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "my-service"},
           "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 9376}]}}
GAME_DEMO = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game-demo"},
             "data": {"player_initial_lives": "3", "ui_properties_file_name": "user-interface.properties",
                      "game.properties": "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n"}}


def with_(base, **changes):
    obj = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = obj
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[last] = value
    return obj


# (case, object, expected HTTP code, expected cause fields (for 422) or message fragment (for 400))
BAD_INPUT = [
    ("invalid name", deployment(metadata__name="Nginx_Deployment"), 422, ["metadata.name"]),
    ("selector does not match", deployment(spec__template__metadata__labels={"app": "web"}), 422,
     ["spec.template.metadata.labels"]),
    ("no selector", deployment(spec__selector=_DELETE), 422, ["spec.selector", "spec.template.metadata.labels"]),
    ("empty selector", deployment(spec__selector={}), 422, ["spec.selector"]),
    ("negative replicas", deployment(spec__replicas=-1), 422, ["spec.replicas"]),
    ("missing image", deployment(spec__template__spec__containers__0__image=_DELETE), 422,
     ["spec.template.spec.containers[0].image"]),
    ("bad container name", deployment(spec__template__spec__containers__0__name="Nginx"), 422,
     ["spec.template.spec.containers[0].name"]),
    ("container port out of range", deployment(spec__template__spec__containers__0__ports=[{"containerPort": 70000}]),
     422, ["spec.template.spec.containers[0].ports[0].containerPort"]),
    ("restartPolicy Never in a Deployment", deployment(spec__template__spec__restartPolicy="Never"), 422,
     ["spec.template.spec.restartPolicy"]),
    ("bad label value", deployment(metadata__labels={"app": "not ok"}), 422, ["metadata.labels"]),
    ("wrong type", deployment(spec__replicas="three"), 400, "cannot unmarshal string into Go struct field"),
    ("unknown field", deployment(spec__replica=3), 400, 'strict decoding error: unknown field "spec.replica"'),
    ("pod without containers", with_(POD, spec__containers=[]), 422, ["spec.containers"]),
    ("duplicate container names",
     with_(POD, spec__containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]), 422,
     ["spec.containers[1].name"]),
    ("mount of an unknown volume", with_(POD, spec__containers=[
        {"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]), 422,
     ["spec.containers[0].volumeMounts[0].name"]),
    ("service name must be DNS-1035", with_(SERVICE, metadata__name="1web"), 422, ["metadata.name"]),
    # targetPort defaults to port, so kube-apiserver reports it too.
    ("service port out of range", with_(SERVICE, spec__ports=[{"port": 70000}]), 422,
     ["spec.ports[0].port", "spec.ports[0].targetPort"]),
    ("service without ports", with_(SERVICE, spec__ports=[]), 422, ["spec.ports"]),
    ("unnamed ports", with_(SERVICE, spec__ports=[{"port": 80}, {"port": 443}]), 422,
     ["spec.ports[0].name", "spec.ports[1].name"]),
    ("nodePort on a ClusterIP service", with_(SERVICE, spec__ports=[{"port": 80, "nodePort": 30080}]), 422,
     ["spec.ports[0].nodePort"]),
    ("bad clusterIP", with_(SERVICE, spec__clusterIP="10.96.0.300"), 422, ["spec.clusterIPs[0]"]),
    ("bad config key", with_(GAME_DEMO, data={"bad key": "x"}), 422, ["data[bad key]"]),
    ("statefulset name must be a DNS label", with_(WEB_STATEFULSET, metadata__name="web.v1"), 422, ["metadata.name"]),
    ("namespace name with dots", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}, 422,
     ["metadata.name"]),
    ("rolebinding to an unknown kind", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                        "metadata": {"name": "rb"},
                                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Thing",
                                                    "name": "x"}}, 422, ["roleRef.kind"]),
]


@pytest.mark.parametrize("case,obj,code,expected", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_rejected_with_field_paths(tmp_path, case, obj, code, expected):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            with pytest.raises(APIError) as caught:
                await chain.admit(create_request(copy.deepcopy(obj)))
            # Nothing is left behind, not even an allocated ClusterIP.
            assert (await store.list("/registry/ranges/"))[0] == []
            return caught.value
        finally:
            await store.close()

    error = run(go())
    assert error.code == code, error.status()
    if code == 422:
        assert error.reason == "Invalid"
        assert [c.field for c in error.causes] == expected
        for cause in error.causes:
            assert f"{cause.field}: {cause.message}" in error.message
    else:
        assert error.reason == "BadRequest" and expected in error.message


def test_422_message_is_worded_like_kube_apiserver(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            await chain.admit(create_request(deployment(spec__template__metadata__labels={"app": "web"})))
        finally:
            await store.close()

    with pytest.raises(APIError) as caught:
        run(go())
    assert caught.value.message == ('Deployment.apps "nginx-deployment" is invalid: spec.template.metadata.labels: '
                                    'Invalid value: {"app":"web"}: `selector` does not match template `labels`')
    status = caught.value.status()
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                                            "message": 'Invalid value: {"app":"web"}: `selector` does not match '
                                                       'template `labels`'}]


@pytest.mark.parametrize("mode,warnings", [("Warn", ['unknown field "spec.replica"']), ("Ignore", [])])
def test_unknown_fields_warn_or_ignore(tmp_path, mode, warnings):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            return await chain.admit(create_request(deployment(spec__replica=3), field_validation=mode))
        finally:
            await store.close()

    obj, got = run(go())
    assert got == warnings
    assert obj["spec"]["replicas"] == 3
    assert "replica" not in obj["spec"]  # dropped, as kube-apiserver's decoder drops it


def test_valid_manifests_from_the_docs_are_admitted(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            results = []
            for obj in (NGINX_DEPLOYMENT, WEB_STATEFULSET, SERVICE, GAME_DEMO, POD):
                results.append(await chain.admit(create_request(copy.deepcopy(obj))))
            return results
        finally:
            await store.close()

    for obj, warnings in run(go()):
        assert warnings == []
        assert obj["metadata"]["namespace"] == "default"


def test_namespace_lifecycle(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path, namespaces=("default", "kube-system"))
        try:
            terminating = {"metadata": {"name": "old", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                           "status": {"phase": "Terminating"}}
            await store.create(kind("v1", "Namespace").store_key(None, "old"), json.dumps(terminating).encode())
            errors = {}
            for ns in ("missing", "old"):
                with pytest.raises(APIError) as caught:
                    await chain.admit(create_request(copy.deepcopy(GAME_DEMO), namespace=ns))
                errors[ns] = caught.value
            for name in ("default", "kube-system", "kube-public"):
                with pytest.raises(APIError) as caught:
                    await chain.admit(AdmissionRequest("DELETE", kind("v1", "Namespace"), None, None, name, None,
                                                       None, None))
                errors[name] = caught.value
            assert await chain.admit(AdmissionRequest("DELETE", kind("v1", "Namespace"), None, None, "old", None,
                                                      None, None)) == (None, [])
            return errors
        finally:
            await store.close()

    errors = run(go())
    assert (errors["missing"].code, errors["missing"].message) == (404, 'namespaces "missing" not found')
    assert errors["old"].code == 403
    assert errors["old"].message == ('configmaps "game-demo" is forbidden: unable to create new content in namespace '
                                     'old because it is being terminated')
    assert errors["old"].causes[0].reason == "NamespaceTerminating"
    for name in ("default", "kube-system", "kube-public"):
        assert errors[name].code == 403
        assert errors[name].message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'


def test_pvc_without_class_gets_the_default_storage_class(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            sc = kind("storage.k8s.io/v1", "StorageClass")
            for name, default, created in (("slow", "true", "2026-01-01T00:00:00Z"), ("nfs", "true",
                                                                                      "2026-02-01T00:00:00Z"),
                                           ("fast", "false", "2026-03-01T00:00:00Z")):
                body = {"metadata": {"name": name, "creationTimestamp": created,
                                     "annotations": {"storageclass.kubernetes.io/is-default-class": default}},
                        "provisioner": "kfab.io/nfs"}
                await store.create(sc.store_key(None, name), json.dumps(body).encode())
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
            picked, _ = await chain.admit(create_request(copy.deepcopy(claim)))
            claim["spec"]["storageClassName"] = ""
            kept, _ = await chain.admit(create_request(claim))
            return picked["spec"]["storageClassName"], kept["spec"]["storageClassName"]
        finally:
            await store.close()

    assert run(go()) == ("nfs", "")


def test_pvc_needs_access_modes_and_storage(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                     "spec": {"storageClassName": "", "resources": {"requests": {"storage": "0"}}}}
            await chain.admit(create_request(claim))
        finally:
            await store.close()

    with pytest.raises(APIError) as caught:
        run(go())
    assert [(c.field, c.message) for c in caught.value.causes] == [
        ("spec.accessModes", "Required value: at least 1 access mode is required"),
        ("spec.resources[storage]", 'Invalid value: "0": must be greater than zero')]


# ---- updates: what may not change -------------------------------------------------------------------

def admitted(tmp_path, obj):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            stored, _ = await chain.admit(create_request(copy.deepcopy(obj)))
            return stored
        finally:
            await store.close()
    return run(go())


def update_error(tmp_path, new, old, subresource=None):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            await chain.admit(update_request(new, old, subresource))
        finally:
            await store.close()
    try:
        run(go())
    except APIError as error:
        return error
    return None


def test_deployment_selector_is_immutable_but_replicas_and_image_change(tmp_path):
    old = admitted(tmp_path, NGINX_DEPLOYMENT)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    assert update_error(tmp_path, new, old) is None
    new["spec"]["selector"] = {"matchLabels": {"app": "nginx", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    error = update_error(tmp_path, new, old)
    assert [(c.field, c.message) for c in error.causes] == [
        ("spec.selector", 'Invalid value: {"matchLabels":{"app":"nginx","tier":"web"}}: field is immutable')]


def test_pod_spec_only_allows_image_and_added_tolerations(tmp_path):
    old = admitted(tmp_path, POD)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    new["spec"]["tolerations"].append({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"})
    assert update_error(tmp_path, new, old) is None
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    error = update_error(tmp_path, new, old)
    assert error.causes[0].field == "spec"
    assert error.causes[0].message.startswith("Forbidden: pod updates may not change fields other than "
                                              "`spec.containers[*].image`")
    # The status subresource never trips over spec rules.
    assert update_error(tmp_path, new, old, subresource="status") is None


def test_metadata_uid_and_name_are_immutable(tmp_path):
    old = admitted(tmp_path, GAME_DEMO)
    old["metadata"]["uid"] = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "other"
    error = update_error(tmp_path, new, old)
    assert [(c.field, c.message) for c in error.causes] == [
        ("metadata.uid", 'Invalid value: "other": field is immutable')]


def test_statefulset_spec_beyond_replicas_and_template_is_frozen(tmp_path):
    old = admitted(tmp_path, WEB_STATEFULSET)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert update_error(tmp_path, new, old) is None
    new["spec"]["serviceName"] = "other"
    error = update_error(tmp_path, new, old)
    assert error.causes[0].field == "spec"
    assert "updates to statefulset spec for fields other than 'replicas'" in error.causes[0].message


def test_pvc_spec_is_immutable_except_the_request_of_a_bound_claim(tmp_path):
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                      "resources": {"requests": {"storage": "1Gi"}}}}
    old = admitted(tmp_path, claim)
    bound = copy.deepcopy(old)
    bound["spec"]["volumeName"] = "pv-1"  # the binder sets it once
    assert update_error(tmp_path, bound, old) is None
    bound["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    bigger = copy.deepcopy(bound)
    bigger["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update_error(tmp_path, bigger, bound) is None
    unbound_bigger = copy.deepcopy(old)
    unbound_bigger["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update_error(tmp_path, unbound_bigger, old).causes[0].field == "spec"
    smaller = copy.deepcopy(bound)
    smaller["spec"]["resources"]["requests"]["storage"] = "512Mi"
    grown = copy.deepcopy(bigger)  # a 2Gi request on a 1Gi volume may go back down, but not below 1Gi
    assert [c.message for c in update_error(tmp_path, smaller, grown).causes] == [
        "Forbidden: field can not be less than status.capacity"]
    other = copy.deepcopy(old)
    other["spec"]["accessModes"] = ["ReadWriteMany"]
    assert update_error(tmp_path, other, old).causes[0].field == "spec"
