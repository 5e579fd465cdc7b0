"""Admission as kubectl and the official client see it: defaults, clear errors, nothing stored on rejection,
allocated ClusterIPs and NodePorts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiException

MANIFESTS = Path(__file__).parent / "manifests"

NGINX_DEPLOYMENT = (MANIFESTS / "nginx-deployment.yaml").read_text()  # the docs' Deployment

MY_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: NodePort
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
"""


def _swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (case, manifest, kind/name that must not exist afterwards, what kubectl must print)
BAD_MANIFESTS = [
    ("invalid name", _swap(NGINX_DEPLOYMENT, "name: nginx-deployment", "name: Nginx_Web"), "deployment/Nginx_Web",
     'The Deployment "Nginx_Web" is invalid: metadata.name: Invalid value: "Nginx_Web": a lowercase RFC 1123 '
     "subdomain must consist of lower case alphanumeric characters"),
    ("selector does not match the template", _swap(NGINX_DEPLOYMENT, "      labels:\n        app: nginx",
                                                   "      labels:\n        app: web"),
     "deployment/nginx-deployment",
     'The Deployment "nginx-deployment" is invalid: spec.template.metadata.labels: Invalid value: {"app":"web"}: '
     "`selector` does not match template `labels`"),
    ("container without image", _swap(NGINX_DEPLOYMENT, "        image: nginx:1.14.2\n", ""),
     "deployment/nginx-deployment", "spec.template.spec.containers[0].image: Required value"),
    ("unknown field", _swap(NGINX_DEPLOYMENT, "  replicas: 3", "  replica: 3"), "deployment/nginx-deployment",
     'strict decoding error: unknown field "spec.replica"'),
    ("wrong type", _swap(NGINX_DEPLOYMENT, "replicas: 3", 'replicas: "three"'), "deployment/nginx-deployment",
     "cannot unmarshal string into Go struct field"),
    ("port out of range", _swap(MY_SERVICE, "port: 80", "port: 80000"), "service/my-service",
     'The Service "my-service" is invalid: spec.ports[0].port: Invalid value: 80000: must be between 1 and 65535, '
     "inclusive"),
    ("nodePort out of range", _swap(MY_SERVICE, "targetPort: 9376", "targetPort: 9376\n      nodePort: 8080"),
     "service/my-service", "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. "
     "The range of valid ports is 30000-32767"),
    ("service name is not a DNS-1035 label", _swap(MY_SERVICE, "name: my-service", "name: 2nd-service"),
     "service/2nd-service", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
     "with an alphabetic character"),
]


@pytest.mark.parametrize("case,manifest,ref,expected", BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS])
def test_kubectl_apply_of_bad_manifest_is_refused_and_stores_nothing(kubectl, namespace, case, manifest, ref,
                                                                     expected):
    result = kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    missing = kubectl("get", "-n", namespace, ref, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    # The refused Service left no IP or port allocated: the same manifest, fixed, gets fresh values.
    assert kubectl("get", "-n", namespace, "services", "-o", "name").stdout == ""


def test_apply_with_validate_warn_stores_and_warns(kubectl, namespace):
    result = kubectl("apply", "-n", namespace, "--validate=warn", "-f", "-",
                     input=_swap(NGINX_DEPLOYMENT, "  replicas: 3", "  replicas: 3\n  replica: 3"))
    assert 'unknown field "spec.replica"' in result.stderr
    stored = json.loads(kubectl("get", "-n", namespace, "deployment/nginx-deployment", "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 3 and "replica" not in stored["spec"]


def test_nginx_deployment_gets_kubernetes_defaults(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=NGINX_DEPLOYMENT)
    deploy = json.loads(kubectl("get", "-n", namespace, "deployment/nginx-deployment", "-o", "json").stdout)
    spec = deploy["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    container = spec["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_kubectl_get_svc_shows_allocated_cluster_ip_and_node_port(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=MY_SERVICE)
    svc = json.loads(kubectl("get", "-n", namespace, "svc/my-service", "-o", "json").stdout)
    cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert cluster_ip.startswith("10.") and 30000 <= node_port <= 32767
    table = kubectl("get", "-n", namespace, "svc", "my-service").stdout
    assert cluster_ip in table and f"80:{node_port}/TCP" in table
    # Re-applying the same manifest (no clusterIP, no nodePort in it) keeps both.
    kubectl("apply", "-n", namespace, "-f", "-", input=_swap(MY_SERVICE, "  type: NodePort",
                                                                "  type: NodePort\n  sessionAffinity: ClientIP"))
    again = json.loads(kubectl("get", "-n", namespace, "svc/my-service", "-o", "json").stdout)
    assert (again["spec"]["clusterIP"], again["spec"]["ports"][0]["nodePort"]) == (cluster_ip, node_port)


def test_requested_cluster_ip_conflict_and_release_on_delete(k8s, kubectl, namespace):
    core = client.CoreV1Api(k8s)
    body = {"metadata": {"name": "fixed"},
            "spec": {"clusterIP": "10.96.200.77", "ports": [{"port": 53, "protocol": "UDP"}]}}
    core.create_namespaced_service(namespace, body)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service(namespace, dict(body, metadata={"name": "clash"}))
    status = json.loads(caught.value.body)
    assert caught.value.status == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
        "message": 'Invalid value: ["10.96.200.77"]: failed to allocate IP 10.96.200.77: provided IP is already '
                   "allocated"}]
    kubectl("delete", "-n", namespace, "service", "fixed")
    again = core.create_namespaced_service(namespace, dict(body, metadata={"name": "clash"}))
    assert again.spec.cluster_ip == "10.96.200.77"


def test_namespace_lifecycle_through_kubectl(kubectl):
    refused = kubectl("delete", "namespace", "default", check=False)
    assert refused.returncode != 0
    assert 'namespaces "default" is forbidden: this namespace may not be deleted' in refused.stderr
    cm = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: orphan
          namespace: no-such-namespace
        data: {a: "1"}
        """)
    missing = kubectl("apply", "-f", "-", input=cm, check=False)
    assert missing.returncode != 0 and 'namespaces "no-such-namespace" not found' in missing.stderr
