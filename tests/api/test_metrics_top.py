"""metrics.k8s.io and `kubectl top`: the API server scrapes the nodes' resource metrics (here hollow nodes with
synthetic figures set by pod annotations) and serves NodeMetrics and PodMetrics as metrics-server does."""

from __future__ import annotations

import json

import pytest

from tests.api.controllers_cluster import running_cluster
from tests.waiting import wait_until

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
    """A server scraping every second, and hollow nodes serving synthetic resource metrics from its CA."""
    data_dir = tmp_path_factory.mktemp("metrics")
    yield from running_cluster(data_dir, 2, server_args=("--metric-resolution", "1"),
                               hollow_args=("--data-dir", str(data_dir)))


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
    rows = wait_until("kubectl top pods to list both pods", pods_reported, 60)
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
    pods = wait_until("PodMetrics of the burner pods",
                      lambda: json.loads(cluster.kubectl(
          "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dburner").stdout
      )["items"] or None, 60)
    pod = pods[0]
    assert pod["kind"] == "PodMetrics" and pod["metadata"]["labels"]["app"] == "burner"
    assert pod["window"].endswith("s") and pod["containers"][0]["usage"]["cpu"].endswith("n")
    one = json.loads(cluster.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/"
                                     f"{pod['metadata']['name']}").stdout)
    assert one["metadata"]["name"] == pod["metadata"]["name"]
    missing = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/no-such-node", check=False)
    assert missing.returncode != 0 and 'nodes.metrics.k8s.io "no-such-node" not found' in missing.stderr


SCALED = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{kfab.io/hollow-cpu: {cpu}}}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        resources: {{requests: {{cpu: 100m}}}}
"""


def _hpa(cluster, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "hpa", name, "-o", "json").stdout)


def _replicas(cluster, name: str) -> int:
    return json.loads(cluster.kubectl("get", "deployment", name, "-o", "json").stdout)["spec"]["replicas"]


def test_kubectl_autoscale_scales_a_busy_deployment_up_and_an_idle_one_down(cluster):
    cluster.kubectl("apply", "-f", "-", input=SCALED.format(name="hot", cpu="200m"))
    wait_until("metrics of the hot pod",
               lambda: "hot-" in cluster.kubectl("top", "pods", "-l", "app=hot", check=False).stdout, 60)
    cluster.kubectl("autoscale", "deployment", "hot", "--min=1", "--max=6", "--cpu=50%")
    # 200m of a 100m request is 200% against 50%: ceil(4.0 x 1) = 4, within the default rate (max(1+4, 2))
    wait_until("the HPA to scale hot to 4", lambda: _replicas(cluster, "hot") == 4, 60)
    hpa = _hpa(cluster, "hot")
    conditions = {c["type"]: c for c in hpa["status"]["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 200
    assert hpa["status"]["lastScaleTime"]
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=hot,reason=SuccessfulRescale",
                             "-o", "json").stdout
    assert "New size: 4; reason: cpu resource utilization (percentage of request) above target" in events
    row = cluster.kubectl("get", "hpa", "hot").stdout.splitlines()
    assert row[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert "Deployment/hot" in row[1] and "cpu: " in row[1] and "/50%" in row[1]

    # Idle pods: without a behavior the scale-down waits 5 minutes, so this HPA asks for none.
    cluster.kubectl("patch", "hpa", "hot", "--type=merge", "-p",
                    '{"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}')
    cluster.kubectl("patch", "deployment", "hot", "--type=merge", "-p",
                    '{"spec": {"template": {"metadata": {"annotations": {"kfab.io/hollow-cpu": "5m"}}}}}')
    wait_until("the HPA to scale the idle hot deployment back to 1", lambda: _replicas(cluster, "hot") == 1, 90)
    behavior = _hpa(cluster, "hot")["spec"]["behavior"]
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0  # defaults filled in for a given behavior


def test_usage_within_the_tolerance_leaves_the_replicas_alone(cluster):
    cluster.kubectl("apply", "-f", "-", input=SCALED.format(name="steady", cpu="54m"))
    cluster.kubectl("autoscale", "deployment", "steady", "--min=1", "--max=5", "--cpu=50%")

    def computed():
        conditions = {c["type"]: c for c in (_hpa(cluster, "steady").get("status") or {}).get("conditions") or []}
        return conditions.get("ScalingActive", {}).get("reason") == "ValidMetricFound"
    wait_until("the HPA to compute from metrics", computed, 60)
    status = _hpa(cluster, "steady")["status"]
    assert status["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 54  # 8% over: tolerated
    assert status["desiredReplicas"] == 1 and _replicas(cluster, "steady") == 1


def test_an_hpa_without_requests_reports_why_it_cannot_scale(cluster):
    cluster.kubectl("apply", "-f", "-", input=SCALED.format(name="norequest", cpu="50m").replace(
        "        resources: {requests: {cpu: 100m}}\n", ""))
    cluster.kubectl("autoscale", "deployment", "norequest", "--max=3", "--cpu=50%")

    def failed():
        conditions = {c["type"]: c for c in (_hpa(cluster, "norequest").get("status") or {}).get("conditions") or []}
        active = conditions.get("ScalingActive") or {}
        # before the pod's first metrics the reason is their absence; then the missing request
        return active if "missing request for cpu" in active.get("message", "") else None
    condition = wait_until("ScalingActive False for the missing request", failed, 60)
    assert (condition["status"], condition["reason"]) == ("False", "FailedGetResourceMetric")
    assert _replicas(cluster, "norequest") == 1


def test_a_viewer_reads_metrics_and_autoscalers_but_cannot_change_them(cluster, tmp_path):
    from tests.api.conftest import run_kubectl, user_kubeconfig

    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    cluster.kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--user=vera", "-n", "default")
    vera = user_kubeconfig(cluster.data_dir, tmp_path, "vera")
    assert run_kubectl(vera, "top", "pods", "-n", "default", check=True).returncode == 0
    assert run_kubectl(vera, "get", "hpa", "-n", "default", check=True).returncode == 0
    hpa = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: burner}\nspec:\n"
           "  maxReplicas: 2\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}\n")
    denied = run_kubectl(vera, "create", "-n", "default", "-f", "-", input=hpa)
    assert denied.returncode != 0 and "forbidden" in denied.stderr


# --- autoscaling/v1: the same objects as v2 shows them -------------------------------------------------------

def test_kubectl_autoscale_cpu_percent_and_v1_reads_what_the_v2_controller_wrote(cluster):
    from kubernetes import client

    cluster.kubectl("apply", "-f", "-", input=SCALED.format(name="old", cpu="200m"))
    cluster.kubectl("autoscale", "deployment", "old", "--cpu-percent=50", "--min=1", "--max=5")
    wait_until("the HPA to scale old to 4", lambda: _replicas(cluster, "old") == 4, 60)
    wait_until("4 current replicas in the status", lambda: _hpa(cluster, "old")["status"]["currentReplicas"] == 4, 30)

    v1 = client.AutoscalingV1Api(cluster.api)
    hpa = v1.read_namespaced_horizontal_pod_autoscaler("old", "default")
    assert hpa.api_version == "autoscaling/v1"
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas, hpa.spec.target_cpu_utilization_percentage) == (1, 5, 50)
    assert hpa.spec.scale_target_ref.kind == "Deployment" and hpa.spec.scale_target_ref.name == "old"
    assert hpa.status.current_cpu_utilization_percentage == 200 and hpa.status.current_replicas == 4
    assert hpa.status.last_scale_time is not None
    # what v1 cannot say travels in upstream's annotations: the conditions and the full current metrics
    conditions = json.loads(hpa.metadata.annotations["autoscaling.alpha.kubernetes.io/conditions"])
    assert {c["type"] for c in conditions} >= {"AbleToScale", "ScalingActive"}
    current = json.loads(hpa.metadata.annotations["autoscaling.alpha.kubernetes.io/current-metrics"])
    assert current[0]["resource"]["name"] == "cpu" and current[0]["resource"]["currentAverageUtilization"] == 200
    assert "annotations" not in _hpa(cluster, "old")["metadata"]   # v2 shows them as fields, not annotations

    table = cluster.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", "old").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "REFERENCE", "TARGETS"]
    assert "Deployment/old" in table[1] and "cpu: 200%/50%" in table[1], table

    # A v1 write changes the v2 object and keeps what v1 cannot say (here: a behavior set through v2).
    cluster.kubectl("patch", "hpa", "old", "--type=merge", "-p",
                    '{"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 7}}}}')
    def replace_v1() -> bool:   # read-modify-write; the controller's status writes may come in between (409)
        hpa = v1.read_namespaced_horizontal_pod_autoscaler("old", "default")
        behavior = json.loads(hpa.metadata.annotations["autoscaling.alpha.kubernetes.io/behavior"])
        assert behavior["ScaleDown"]["StabilizationWindowSeconds"] == 7      # Go field names, as upstream writes it
        hpa.spec.target_cpu_utilization_percentage = 60
        hpa.spec.max_replicas = 6
        try:
            v1.replace_namespaced_horizontal_pod_autoscaler("old", "default", hpa)
        except client.ApiException as e:
            if e.status != 409:
                raise
            return False
        return True
    wait_until("a v1 replace without a conflict", replace_v1, 30)
    spec = _hpa(cluster, "old")["spec"]
    assert spec["maxReplicas"] == 6
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 7


def test_a_v1_autoscaler_is_a_v2_one_with_a_cpu_metric_and_v2_metrics_survive_a_v1_round_trip(cluster):
    from kubernetes import client

    v1 = client.AutoscalingV1Api(cluster.api)
    made = v1.create_namespaced_horizontal_pod_autoscaler("default", client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="plain"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            max_replicas=3, scale_target_ref=client.V1CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="plain"))))
    assert made.spec.min_replicas == 1 and made.spec.target_cpu_utilization_percentage == 80  # v1's implicit target
    assert made.status.current_replicas == 0 and made.status.desired_replicas == 0
    assert _hpa(cluster, "plain")["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80

    two_metrics = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: two}\nspec:\n"
                   "  maxReplicas: 4\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: two}\n"
                   "  metrics:\n  - {type: Resource, resource: {name: memory, target: {type: AverageValue, "
                   "averageValue: 100Mi}}}\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, "
                   "averageUtilization: 70}}}\n")
    cluster.kubectl("create", "-f", "-", input=two_metrics)
    as_v1 = json.loads(cluster.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", "two", "-o", "json").stdout)
    assert as_v1["apiVersion"] == "autoscaling/v1" and as_v1["spec"]["targetCPUUtilizationPercentage"] == 70
    others = json.loads(as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"])
    assert others == [{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
    # kubectl writes the v1 object back (a label): the memory metric comes back from the annotation
    as_v1["metadata"]["labels"] = {"tier": "web"}
    del as_v1["metadata"]["resourceVersion"]   # unconditional: the controller may write status meanwhile
    cluster.kubectl("replace", "-f", "-", input=json.dumps(as_v1))
    v2 = _hpa(cluster, "two")
    assert v2["metadata"]["labels"] == {"tier": "web"} and "annotations" not in v2["metadata"]
    assert [m["resource"]["name"] for m in v2["spec"]["metrics"]] == ["memory", "cpu"]

    bad = cluster.kubectl("create", "-f", "-", check=False, input=(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\nspec:\n"
        "  maxReplicas: 0\n  targetCPUUtilizationPercentage: 50\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: bad}\n"))
    assert bad.returncode != 0 and "spec.maxReplicas" in bad.stderr, bad.stderr

    group = json.loads(cluster.kubectl("get", "--raw", "/apis/autoscaling").stdout)
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"] and group["preferredVersion"]["version"] == "v2"
    # a watch on v1 sends v1 objects
    from kubernetes import watch
    events = list(watch.Watch().stream(v1.list_namespaced_horizontal_pod_autoscaler, "default", timeout_seconds=2,
                                       field_selector="metadata.name=two"))
    assert [(e["type"], e["object"].api_version, e["object"].spec.target_cpu_utilization_percentage)
            for e in events] == [("ADDED", "autoscaling/v1", 70)]


def test_an_hpa_scales_a_custom_resource_through_its_scale_subresource(cluster):
    from tests.api.crd_manifests import crd_manifest

    replicas = {"type": "integer", "minimum": 0}
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"replicas": replicas}},
        "status": {"type": "object", "properties": {"replicas": replicas, "selector": {"type": "string"}}}}}
    cluster.kubectl("apply", "-f", "-", input=crd_manifest(
        "scale.kfab.test", "workers", "Worker", schema, subresources={"status": {}, "scale": {
            "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector"}}))
    cluster.kubectl("wait", "--for=condition=Established", "crd/workers.scale.kfab.test", "--timeout=20s")
    cluster.kubectl("apply", "-f", "-", input="apiVersion: scale.kfab.test/v1\nkind: Worker\n"
                                              "metadata: {name: crew}\nspec: {replicas: 2}\n")
    cluster.kubectl("patch", "workers.scale.kfab.test", "crew", "--subresource=status", "--type=merge", "-p",
                    '{"status": {"replicas": 2, "selector": "app=crew"}}')
    # the operator's pods (made here: no operator runs): 200m each against a 100m request
    for i in range(2):
        cluster.kubectl("apply", "-f", "-", input=(
            f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: crew-{i}\n  labels: {{app: crew}}\n"
            "  annotations: {kfab.io/hollow-cpu: 200m}\nspec:\n  containers:\n  - name: main\n    image: busybox:1.36\n"
            "    resources: {requests: {cpu: 100m}}\n"))
    cluster.kubectl("autoscale", "workers.scale.kfab.test", "crew", "--min=1", "--max=6", "--cpu=50%")

    def spec_replicas() -> int:
        return json.loads(cluster.kubectl("get", "workers.scale.kfab.test", "crew", "-o", "json").stdout
                          )["spec"]["replicas"]
    # 200% against 50% on 2 pods: ceil(2 x 4.0) = 8, held to maxReplicas
    wait_until("the HPA to scale the Worker through /scale", lambda: spec_replicas() == 6, 60)
    hpa = _hpa(cluster, "crew")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "scale.kfab.test/v1", "kind": "Worker", "name": "crew"}
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 200
    cluster.kubectl("delete", "crd", "workers.scale.kfab.test", "--timeout=30s", check=False)
