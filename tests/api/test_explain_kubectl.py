"""`kubectl explain` and kubectl's schema-driven behaviour work from the server's OpenAPI documents."""

import json
import ssl
import urllib.error
import urllib.request

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.14.2
"""


def test_explain_a_nested_field_prints_its_description_and_fields(kubectl):
    out = kubectl("explain", "deployment.spec.strategy").stdout
    assert "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "Rolling update config params." in out


def test_explain_recursive_lists_the_whole_pod_tree(kubectl):
    out = kubectl("explain", "pods", "--recursive").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1")
    assert "Pod is a collection of containers that can run on a host." in out
    for line in ["  spec\t<PodSpec>", "    containers\t<[]Container> -required-", "      image\t<string>",
                 "      readinessProbe\t<Probe>", "        httpGet\t<HTTPGetAction>",
                 "      resources\t<ResourceRequirements>", "        limits\t<map[string]Quantity>"]:
        assert line in out.splitlines(), line


def test_explain_types_of_core_group_fields(kubectl):
    out = kubectl("explain", "svc.spec.ports.targetPort").stdout
    assert "FIELD: targetPort <IntOrString>" in out
    assert "Number or name of the port to access on the pods targeted by the service." in out
    out = kubectl("explain", "cm").stdout
    assert "data\t<map[string]string>" in out
    out = kubectl("explain", "nodes.status.conditions").stdout
    assert "lastHeartbeatTime\t<string>" in out


def test_explain_from_the_swagger_v2_protobuf(kubectl):
    out = kubectl("explain", "deploy.spec.strategy", "--output", "plaintext-openapiv2").stdout
    assert "KIND:     Deployment\nVERSION:  apps/v1" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<Object>" in out


def test_explain_an_unknown_field_fails_clearly(kubectl):
    result = kubectl("explain", "deployment.spec.replicaz", check=False)
    assert result.returncode != 0
    assert 'field "replicaz" does not exist' in result.stderr


def test_kubectl_asks_the_server_to_validate_fields(kubectl, namespace):
    # kubectl reads the PATCH operation's parameters in /openapi/v3 and, finding fieldValidation, sends
    # fieldValidation=Strict instead of validating on the client.
    created = kubectl("apply", "-n", namespace, "-f", "-", "-v=6", input=DEPLOYMENT.format(replicas="replicas: 2"))
    assert "/openapi/v3/apis/apps/v1?hash=" in created.stderr
    assert "fieldValidation=Strict" in created.stderr
    unknown = kubectl("apply", "-n", namespace, "-f", "-", check=False,
                      input=DEPLOYMENT.format(replicas="replicaz: 2"))
    assert unknown.returncode != 0
    assert 'strict decoding error: unknown field "spec.replicaz"' in unknown.stderr
    wrong_type = kubectl("apply", "-n", namespace, "-f", "-", check=False,
                         input=DEPLOYMENT.format(replicas='replicas: "two"'))
    assert wrong_type.returncode != 0
    assert "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32" \
        in wrong_type.stderr
    out = kubectl("get", "deploy", "web", "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout
    assert out == "2"


def test_openapi_documents_are_served_to_any_authenticated_client(kfab_server, k8s):
    index = json.loads(k8s.call_api("GET", f"{kfab_server.url}/openapi/v3").read())
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    doc = json.loads(k8s.call_api("GET", f"{kfab_server.url}{url}").read())
    assert "io.k8s.api.core.v1.Pod" in doc["components"]["schemas"]
    swagger = json.loads(k8s.call_api("GET", f"{kfab_server.url}/openapi/v2",
                                      header_params={"Accept": "application/json"}).read())
    assert swagger["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in swagger["definitions"]
    # Without credentials: 401, as kube-apiserver answers anonymous requests when anonymous auth is off.
    context = ssl.create_default_context(cafile=str(kfab_server.data_dir / "pki" / "ca.crt"))
    try:
        urllib.request.urlopen(f"{kfab_server.url}/openapi/v3", context=context, timeout=10)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 401
