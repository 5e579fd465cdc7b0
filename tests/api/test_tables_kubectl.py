"""`kubectl get` prints the columns users know, from the server's Tables (and `-o wide` the extra ones)."""

import json
import re
from pathlib import Path

import pytest
from kubernetes import client

NGINX = (Path(__file__).parent / "manifests" / "nginx-deployment.yaml").read_text()  # the docs' Deployment

SERVICES = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web-nodeport
spec:
  type: NodePort
  selector:
    app: nginx
  ports:
  - port: 8080
    targetPort: 80
    protocol: TCP
"""

AGE = r"\d+s|\d+m\d*s?"


def table(output: str) -> tuple[list[str], list[list[str]]]:
    """kubectl's plain output -> (headers, rows), split on runs of 2+ spaces (cells may hold one space)."""
    lines = [line for line in output.splitlines() if line.strip()]
    split = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return split[0], split[1:]


def row(rows: list[list[str]], name: str) -> list[str]:
    return next(r for r in rows if r[0] == name)


def test_get_pods_shows_ready_status_restarts_age(kubectl, k8s, namespace):
    client.CoreV1Api(k8s).create_namespaced_pod(namespace, {
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}]}})
    headers, rows = table(kubectl("get", "pods", "-n", namespace).stdout)
    assert headers == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    name, ready, status, restarts, age = row(rows, "web-0")
    assert ready == "0/2" and status == "Pending" and restarts == "0"
    assert re.fullmatch(AGE, age), age

    headers, rows = table(kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout)
    assert headers == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                       "READINESS GATES"]
    assert row(rows, "web-0")[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_get_pods_in_all_namespaces_and_with_labels_uses_the_row_metadata(kubectl, k8s, namespace):
    client.CoreV1Api(k8s).create_namespaced_pod(namespace, {
        "metadata": {"name": "labelled", "labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
    headers, rows = table(kubectl("get", "pods", "-A", "--show-labels").stdout)
    assert headers == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    mine = next(r for r in rows if r[:2] == [namespace, "labelled"])
    assert mine[-1] == "app=web,tier=front"


def test_get_deployments_shows_ready_up_to_date_available_and_wide_containers(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=NGINX)
    headers, rows = table(kubectl("get", "deploy", "-n", namespace).stdout)
    assert headers == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    name, ready, up_to_date, available, age = row(rows, "nginx-deployment")
    assert re.fullmatch(r"\d/3", ready) and up_to_date.isdigit() and available.isdigit()

    headers, rows = table(kubectl("get", "deployments", "-n", namespace, "-o", "wide").stdout)
    assert headers[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert row(rows, "nginx-deployment")[5:] == ["nginx", "nginx:1.14.2", "app=nginx"]


def test_get_services_shows_type_cluster_ip_ports(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=SERVICES)
    headers, rows = table(kubectl("get", "svc", "-n", namespace, "-o", "wide").stdout)
    assert headers == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    name, kind, cluster_ip, external_ip, ports, age, selector = row(rows, "web")
    assert kind == "ClusterIP" and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", cluster_ip)
    assert (external_ip, ports, selector) == ("<none>", "80/TCP", "app=nginx")
    name, kind, cluster_ip, external_ip, ports, age, selector = row(rows, "web-nodeport")
    assert kind == "NodePort" and re.fullmatch(r"8080:3\d{4}/TCP", ports), ports


def test_get_namespaces_configmaps_secrets(kubectl, k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "game-demo"},
                                                  "data": {"player_initial_lives": "3", "ui.properties": "x"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"user": "admin"}})
    headers, rows = table(kubectl("get", "ns", namespace).stdout)
    assert headers == ["NAME", "STATUS", "AGE"] and rows[0][:2] == [namespace, "Active"]
    headers, rows = table(kubectl("get", "cm", "game-demo", "-n", namespace).stdout)
    assert headers == ["NAME", "DATA", "AGE"] and rows[0][:2] == ["game-demo", "2"]
    headers, rows = table(kubectl("get", "secret", "creds", "-n", namespace).stdout)
    assert headers == ["NAME", "TYPE", "DATA", "AGE"] and rows[0][:3] == ["creds", "Opaque", "1"]


def test_kinds_without_a_printer_show_name_and_created_at(kubectl, k8s, namespace):
    client.RbacAuthorizationV1Api(k8s).create_namespaced_role(namespace, {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    headers, rows = table(kubectl("get", "roles", "-n", namespace).stdout)
    assert headers == ["NAME", "CREATED AT"]
    assert rows[0][0] == "pod-reader" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0][1])


@pytest.mark.parametrize("include_object,expected", [("Metadata", "PartialObjectMetadata"), ("Object", "Pod"),
                                                     ("None", None)])
def test_table_requests_from_the_official_client(k8s, namespace, include_object, expected):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    url = f"{k8s.configuration.host}/api/v1/namespaces/{namespace}/pods?includeObject={include_object}"
    raw = k8s.call_api("GET", url, header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert raw.status == 200
    response = json.loads(raw.read())
    assert response["kind"] == "Table" and response["apiVersion"] == "meta.k8s.io/v1"
    assert response["metadata"]["resourceVersion"]
    assert [c["name"] for c in response["columnDefinitions"]][:3] == ["Name", "Ready", "Status"]
    [pod_row] = response["rows"]
    assert pod_row["cells"][0] == "p"
    assert (pod_row.get("object") or {}).get("kind") == expected
