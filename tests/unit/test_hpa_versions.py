"""autoscaling/v1 <-> v2 HorizontalPodAutoscaler as upstream converts: v1's CPU fields, the rest in annotations."""

from __future__ import annotations

import json

from kfab.objects import conversion
from kfab.objects.hpa_versions import BEHAVIOR, CONDITIONS, CURRENT_METRICS, METRICS, to_v1, to_v2

REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
CONDITION = {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
             "reason": "ReadyForNewScale", "message": "recommended size matches current size"}
V2 = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
    "spec": {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 9,
             "metrics": [
                 {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": 60}}},
                 {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                                "averageValue": "10"}}},
                 {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                                   "target": {"type": "Value", "value": "30"}}}],
             "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                      "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                          "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min",
                                        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}]}}},
    "status": {"observedGeneration": 3, "lastScaleTime": "2026-01-01T00:00:00Z", "currentReplicas": 3,
               "desiredReplicas": 4, "conditions": [CONDITION],
               "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                   "averageUtilization": 75, "averageValue": "150m"}}}]},
}


def test_v1_shows_the_cpu_target_and_carries_the_rest_in_upstreams_annotations():
    v1 = to_v1(V2)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 9,
                          "targetCPUUtilizationPercentage": 60}
    assert v1["status"] == {"observedGeneration": 3, "lastScaleTime": "2026-01-01T00:00:00Z", "currentReplicas": 3,
                            "desiredReplicas": 4, "currentCPUUtilizationPercentage": 75}
    annotations = v1["metadata"]["annotations"]
    assert annotations["team"] == "a"
    assert json.loads(annotations[METRICS]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
        {"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}},
                                          "targetValue": "30"}}]
    assert json.loads(annotations[CURRENT_METRICS]) == [
        {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 75,
                                          "currentAverageValue": "150m"}}]
    assert json.loads(annotations[CONDITIONS]) == [CONDITION]
    behavior = json.loads(annotations[BEHAVIOR])   # upstream marshals its internal struct: Go field names
    assert behavior["ScaleDown"] == {"StabilizationWindowSeconds": 60, "SelectPolicy": "Min",
                                     "Policies": [{"Type": "Percent", "Value": 50, "PeriodSeconds": 30}]}
    assert "," in annotations[METRICS] and ", " not in annotations[METRICS]   # compact, as json.Marshal


def test_v2_to_v1_and_back_loses_nothing_but_puts_the_cpu_metric_last():
    back = to_v2(to_v1(V2))
    assert back["metadata"] == V2["metadata"]
    assert back["status"] == V2["status"]
    assert back["spec"]["behavior"] == V2["spec"]["behavior"]
    metrics = V2["spec"]["metrics"]
    assert back["spec"]["metrics"] == metrics[1:] + metrics[:1]   # as upstream: others from the annotation first


def test_a_bare_v1_object_gets_the_implicit_cpu_target_and_no_status():
    v2 = to_v2({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
                "spec": {"scaleTargetRef": REF, "maxReplicas": 3}})
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert "status" not in v2 and "behavior" not in v2["spec"]


def test_malformed_or_lower_case_annotations_and_v2_writes_that_carry_them():
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "x", "annotations": {METRICS: "not json", BEHAVIOR: '{"scaleDown": {"policies": '
                                                    '[{"type": "Pods", "value": 1, "periodSeconds": 60}]}}'}},
          "spec": {"scaleTargetRef": REF, "maxReplicas": 3, "targetCPUUtilizationPercentage": 40}}
    v2 = to_v2(v1)
    assert [m["resource"]["target"]["averageUtilization"] for m in v2["spec"]["metrics"]] == [40]
    assert v2["spec"]["behavior"] == {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    assert "annotations" not in v2["metadata"]
    # a v2 object is stored without the v1-only annotations; other kinds pass untouched
    stored = conversion.to_stored(dict(V2, metadata={"name": "web", "annotations": {CONDITIONS: "[]"}}))
    assert "annotations" not in stored["metadata"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {CONDITIONS: "[]"}}}
    assert conversion.to_stored(pod) is pod and conversion.to_version(pod, "v1") is pod
    assert conversion.to_version(V2, "autoscaling/v1") == to_v1(V2)


def test_a_v1_protobuf_body_decodes_with_v1s_fields():
    from kfab.api import protobuf
    from tests.unit.test_core_protobuf import envelope, field

    ref = field(1, "Deployment") + field(2, "web") + field(3, "apps/v1")
    spec = field(1, ref) + field(2, 1) + field(3, 5) + field(4, 50)
    obj = protobuf.decode(envelope("autoscaling/v1", "HorizontalPodAutoscaler", field(1, field(1, "web")) +
                                   field(2, spec)))
    assert obj["spec"] == {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5,
                           "targetCPUUtilizationPercentage": 50}
    assert to_v2(obj)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50


def test_controllers_that_walk_every_kind_see_the_hpa_once():
    from kfab.controllers.namespace import namespaced_kinds

    hpas = [rt for rt in namespaced_kinds([]) if rt.kind == "HorizontalPodAutoscaler"]
    assert [rt.api_version for rt in hpas] == ["autoscaling/v2"]
    assert conversion.is_view("autoscaling", "HorizontalPodAutoscaler", "autoscaling/v1")
    assert not conversion.is_view("autoscaling", "HorizontalPodAutoscaler", "autoscaling/v2")
    assert not conversion.is_view("apps", "Deployment", "apps/v1")
