"""Schema checks against the published Kubernetes schemas: the messages kube-apiserver users see."""

import copy

import pytest

from kfab.objects.registry import REGISTRY
from kfab.objects.schema import (
    REQUIRED, TYPE_INVALID, schema_error, unknown_field_warnings, unknown_fields, unknown_fields_error, validate,
)

DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
POD = REGISTRY.by_kind("v1", "Pod")
SERVICE = REGISTRY.by_kind("v1", "Service")
SECRET = REGISTRY.by_kind("v1", "Secret")
STATEFULSET = REGISTRY.by_kind("apps/v1", "StatefulSet")
REVISION = REGISTRY.by_kind("apps/v1", "ControllerRevision")

# The nginx Deployment from the Kubernetes docs, as the API server stores it after defaulting.
NGINX = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"},
                 "creationTimestamp": "2026-11-27T19:00:00Z", "resourceVersion": "12", "generation": 1,
                 "annotations": {"deployment.kubernetes.io/revision": "1"},
                 "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:replicas": {}}}, "time": "2026-11-27T19:00:00Z"}]},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nginx"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}, "creationTimestamp": None},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx:1.14.2", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25}},
                    "env": [{"name": "MODE", "value": "prod"}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
            },
        },
    },
    "status": {"replicas": 3, "readyReplicas": 3,
               "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-11-27T19:00:05Z"}]},
}


def nginx(**edits):
    obj = copy.deepcopy(NGINX)
    for path, value in edits.items():
        target = obj
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value
    return obj


def test_a_realistic_deployment_has_no_schema_problems():
    assert validate(DEPLOYMENT, NGINX) == []
    assert unknown_fields(DEPLOYMENT, NGINX) == []


def test_wrong_type_is_reported_in_kube_apiserver_decoding_words():
    [cause] = validate(DEPLOYMENT, nginx(spec__replicas="3"))
    assert cause.field == "spec.replicas"
    assert cause.reason == TYPE_INVALID
    assert cause.message == ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                             "of type int32")


def test_wrong_type_deep_in_a_list_names_the_indexed_field():
    obj = nginx()
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    obj["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = 5
    causes = validate(DEPLOYMENT, obj)
    assert [c.field for c in causes] == ["spec.template.spec.containers[0].ports[0].containerPort",
                                         "spec.template.spec.containers[0].env[0].value"]
    assert causes[1].message == ("json: cannot unmarshal number into Go struct field "
                                 "EnvVar.spec.template.spec.containers.env.value of type string")


def test_type_errors_become_400_bad_request_like_kube_apiserver():
    error = schema_error(DEPLOYMENT, "nginx-deployment", validate(DEPLOYMENT, nginx(spec__replicas="3")))
    assert error.code == 400 and error.reason == "BadRequest"
    assert error.message.startswith('Deployment in version "v1" cannot be handled as a Deployment: json: cannot '
                                    "unmarshal string into Go struct field DeploymentSpec.spec.replicas")


def test_missing_required_field_becomes_422_invalid_with_the_field_path():
    obj = nginx()
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    obj["spec"]["template"]["spec"]["containers"][0]["ports"].append({"name": "metrics"})
    causes = validate(DEPLOYMENT, obj)
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.template.spec.containers[0].ports[1].containerPort", REQUIRED),
        ("spec.template.spec.containers[0].name", REQUIRED),
    ]
    error = schema_error(DEPLOYMENT, "nginx-deployment", causes)
    assert error.code == 422 and error.reason == "Invalid"
    assert error.status()["details"]["causes"][1] == {
        "reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers[0].name"}
    assert 'Deployment.apps "nginx-deployment" is invalid' in error.message


def test_required_fields_of_status_are_not_enforced():
    # kube-apiserver never enforces schema-required status fields; node agents write partial statuses.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]},
           "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "ready": False}]}}
    assert validate(POD, pod) == []


def test_no_problems_means_no_error():
    assert schema_error(DEPLOYMENT, "x", []) is None


@pytest.mark.parametrize("value", ["80", 8080, "http"])
def test_int_or_string_accepts_numbers_and_names(value):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": value}]}}
    assert validate(SERVICE, svc) == []


def test_int_or_string_rejects_other_types():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80, "targetPort": True}]}}
    [cause] = validate(SERVICE, svc)
    assert cause.field == "spec.ports[0].targetPort"
    assert "of type intstr.IntOrString" in cause.message


@pytest.mark.parametrize("quantity", ["1", "0.5", "100m", "1.5Gi", "128Mi", "1e3", "2k", 2, 0.5])
def test_quantities_kubernetes_accepts(quantity):
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": quantity}}}]}}
    assert validate(POD, pod) == []


@pytest.mark.parametrize("quantity", ["", "12x", "1 Gi", "Gi", "1.2.3"])
def test_malformed_quantities_are_decoding_errors(quantity):
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": quantity}}}]}}
    [cause] = validate(POD, pod)
    assert cause.field == "spec.containers[0].resources.limits[memory]"
    assert cause.reason == TYPE_INVALID and cause.message.startswith("quantities must match the regular expression")


def test_times_must_be_rfc3339():
    assert validate(DEPLOYMENT, nginx(metadata__creationTimestamp="2026-11-27T19:00:00.123+01:00")) == []
    [cause] = validate(DEPLOYMENT, nginx(metadata__creationTimestamp="yesterday"))
    assert cause.field == "metadata.creationTimestamp"
    assert cause.message.startswith('parsing time "yesterday"')


def test_secret_data_must_be_base64():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"password": "c2VjcmV0", "token": "not base64!"}, "stringData": {"plain": "x"}}
    [cause] = validate(SECRET, secret)
    assert cause.field == "data[token]"
    assert cause.message == "illegal base64 data at input byte 3"


def test_null_decodes_to_the_zero_value():
    assert validate(DEPLOYMENT, nginx(spec__replicas=None, spec__strategy=None)) == []


def test_unknown_fields_are_named_as_strict_decoding_names_them():
    obj = nginx(spec__replicaz=3)
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    obj["metadata"]["nam"] = "x"
    paths = unknown_fields(DEPLOYMENT, obj)
    assert sorted(paths) == ["metadata.nam", "spec.replicaz", "spec.template.spec.containers[0].imagePullPolicyy"]
    error = unknown_fields_error(DEPLOYMENT, ["spec.replicaz"])
    assert error.code == 400
    assert error.message == ('Deployment in version "v1" cannot be handled as a Deployment: '
                             'strict decoding error: unknown field "spec.replicaz"')
    assert unknown_field_warnings(["spec.replicaz"]) == ['unknown field "spec.replicaz"']


def test_map_keys_and_free_form_fields_are_never_unknown():
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "web-6d4f"},
                "revision": 1, "data": {"spec": {"template": {"anything": ["goes", 1]}}}}
    assert unknown_fields(REVISION, revision) == []
    assert validate(REVISION, revision) == []
    assert unknown_fields(DEPLOYMENT, nginx(metadata__labels={"any.key/x": "v"})) == []


def test_statefulset_with_volume_claim_templates():
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
           "spec": {"serviceName": "nginx", "replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.8",
                                                          "volumeMounts": [{"name": "www",
                                                                            "mountPath": "/usr/share/nginx/html"}]}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                              "spec": {"accessModes": ["ReadWriteOnce"],
                                                       "resources": {"requests": {"storage": "1Gi"}}}}]}}
    assert validate(STATEFULSET, sts) == []
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] = "ReadWriteOnce"
    [cause] = validate(STATEFULSET, sts)
    assert cause.field == "spec.volumeClaimTemplates[0].spec.accessModes"
    assert cause.message.endswith("of type []string")


def test_integers_out_of_range_and_fractions_are_rejected():
    [cause] = validate(DEPLOYMENT, nginx(spec__replicas=2**31))
    assert "cannot unmarshal number 2147483648" in cause.message
    [cause] = validate(DEPLOYMENT, nginx(spec__replicas=1.5))
    assert "cannot unmarshal number 1.5" in cause.message
    assert validate(DEPLOYMENT, nginx(spec__replicas=2.0)) == []


def test_every_registered_kind_compiles_and_accepts_a_minimal_object():
    for rt in REGISTRY.types:
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": "x"}}
        for cause in validate(rt, obj):
            assert cause.reason == REQUIRED, (rt.kind, cause)
