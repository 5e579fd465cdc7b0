"""metrics.k8s.io and `kubectl top`: the API server scrapes the nodes' resource metrics (here hollow nodes with
synthetic figures set by pod annotations) and serves NodeMetrics and PodMetrics as metrics-server does."""

from __future__ import annotations

import json

import pytest

from tests.api.controllers_cluster import wait_for
from tests.api.metrics_cluster import metrics_cluster

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 2
  selector: {matchLabels: {app: burner}}
  template:
    metadata:
      labels: {app: burner}
      annotations: {kfab.io/hollow-cpu: 250m, kfab.io/hollow-memory: 64Mi}
    spec:
      containers:
      - {name: main, image: busybox:1.36}
      - {name: sidecar, image: busybox:1.36}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from metrics_cluster(tmp_path_factory.mktemp("metrics"))


def test_metrics_api_is_discoverable_with_nodes_and_pods(cluster):
    group = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1").stdout)
    resources = {r["name"]: r for r in group["resources"]}
    assert resources["nodes"]["kind"] == "NodeMetrics" and resources["nodes"]["verbs"] == ["get", "list"]
    assert resources["pods"]["kind"] == "PodMetrics" and resources["pods"]["namespaced"] is True


def test_kubectl_top_shows_what_the_nodes_report(cluster):
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT)

    def pods_reported():
        out = cluster.kubectl("top", "pods", "-l", "app=burner", check=False)
        rows = [line.split() for line in out.stdout.splitlines()[1:]]
        return rows if out.returncode == 0 and len(rows) == 2 else None
    rows = wait_for(pods_reported, 60, "kubectl top pods to list both pods")
    for name, cpu, memory in rows:
        assert name.startswith("burner-")
        assert cpu in ("499m", "500m", "501m") and memory == "128Mi"  # two containers of 250m / 64Mi each

    containers = cluster.kubectl("top", "pods", "-l", "app=burner", "--containers").stdout.splitlines()
    assert containers[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sorted({line.split()[1] for line in containers[1:]}) == ["main", "sidecar"]
    assert all(line.split()[3] == "64Mi" for line in containers[1:])

    out = cluster.kubectl("top", "nodes").stdout.splitlines()
    assert out[0].split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    by_node = {line.split()[0]: line.split() for line in out[1:]}
    assert set(by_node) == set(cluster.nodes)
    total_cpu = sum(int(row[1].rstrip("m")) for row in by_node.values())
    assert 1000 + 2 * 100 - 5 <= total_cpu <= 1000 + 2 * 100 + 5  # the pods' 1000m and each node's own 100m


def test_metrics_objects_read_as_metrics_server_writes_them(cluster):
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    pods = wait_for(lambda: json.loads(cluster.kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dburner").stdout
    )["items"] or None, 60, "PodMetrics of the burner pods")
    pod = pods[0]
    assert pod["kind"] == "PodMetrics" and pod["metadata"]["labels"]["app"] == "burner"
    assert pod["window"].endswith("s") and pod["containers"][0]["usage"]["cpu"].endswith("n")
    one = json.loads(cluster.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/"
                                     f"{pod['metadata']['name']}").stdout)
    assert one["metadata"]["name"] == pod["metadata"]["name"]
    missing = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/no-such-node", check=False)
    assert missing.returncode != 0 and 'nodes.metrics.k8s.io "no-such-node" not found' in missing.stderr
