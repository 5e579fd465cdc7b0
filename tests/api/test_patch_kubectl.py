"""kubectl patch / apply / apply --server-side against a real kfab server, with the docs' manifests."""

import json

import pytest
import yaml

PATCH_DEMO = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: patch-demo
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: patch-demo-ctr
        image: nginx
      tolerations:
      - effect: NoSchedule
        key: dedicated
        value: test-team
"""


def get(kubectl, namespace, *what):
    return json.loads(kubectl("-n", namespace, "get", *what, "-o", "json", "--show-managed-fields").stdout)


def containers(obj):
    return [(c["name"], c["image"]) for c in obj["spec"]["template"]["spec"]["containers"]]


@pytest.fixture
def patch_demo(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", "-", input=PATCH_DEMO)
    return namespace


def test_strategic_merge_patch_adds_a_container_like_the_docs(kubectl, patch_demo):
    kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--type", "strategic", "--patch",
            "spec:\n  template:\n    spec:\n      containers:\n      - name: patch-demo-ctr-2\n        image: redis\n")
    obj = get(kubectl, patch_demo, "deployment", "patch-demo")
    assert containers(obj) == [("patch-demo-ctr-2", "redis"), ("patch-demo-ctr", "nginx")]
    # tolerations have no merge strategy: a patch replaces the list
    kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--patch",
            '{"spec":{"template":{"spec":{"tolerations":[{"effect":"NoSchedule","key":"disktype","value":"ssd"}]}}}}')
    obj = get(kubectl, patch_demo, "deployment", "patch-demo")
    assert obj["spec"]["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]


def test_merge_patch_replaces_the_container_list(kubectl, patch_demo):
    kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--type", "merge", "--patch",
            '{"spec":{"template":{"spec":{"containers":[{"name":"patch-demo-ctr-3","image":"gcr.io/google-samples/node-hello:1.0"}]}}}}')
    obj = get(kubectl, patch_demo, "deployment", "patch-demo")
    assert containers(obj) == [("patch-demo-ctr-3", "gcr.io/google-samples/node-hello:1.0")]


def test_json_patch_applies_and_a_failed_test_changes_nothing(kubectl, patch_demo):
    kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--type", "json", "-p",
            '[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]')
    obj = get(kubectl, patch_demo, "deployment", "patch-demo")
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["labels"] == {"x": "y"}
    result = kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--type", "json", "-p",
                     '[{"op":"replace","path":"/spec/replicas","value":9},{"op":"test","path":"/spec/replicas","value":1}]',
                     check=False)
    assert result.returncode != 0 and "test" in result.stderr
    assert get(kubectl, patch_demo, "deployment", "patch-demo")["spec"]["replicas"] == 4
    result = kubectl("-n", patch_demo, "patch", "deployment", "patch-demo", "--type", "json", "-p",
                     '[{"op":"remove","path":"/spec/nothing/here"}]', check=False)
    assert result.returncode != 0
    # The Deployment controller keeps writing status (new resourceVersions), so "nothing stored" is shown by
    # what a patch could have changed: spec, labels, and generation (bumped by any stored spec change).
    after = get(kubectl, patch_demo, "deployment", "patch-demo")
    assert after["spec"] == obj["spec"] and after["metadata"]["labels"] == obj["metadata"]["labels"]
    assert after["metadata"]["generation"] == obj["metadata"]["generation"]


def test_service_ports_merge_by_port(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", "-", input="""
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: https
    port: 443
    targetPort: 8443
""")
    kubectl("-n", namespace, "patch", "service", "web", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}')
    ports = {p["port"]: p["targetPort"] for p in get(kubectl, namespace, "service", "web")["spec"]["ports"]}
    assert ports == {80: 9090, 443: 8443}


def test_reapplying_a_changed_manifest_changes_only_that_container(kubectl, namespace):
    manifest = yaml.safe_load(PATCH_DEMO)
    spec = manifest["spec"]["template"]["spec"]
    spec["containers"] = [
        {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "cache", "image": "redis:7"}]
    kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    spec["containers"][1]["image"] = "redis:7.2"
    spec["containers"][0]["env"] = [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    obj = get(kubectl, namespace, "deployment", "patch-demo")
    assert containers(obj) == [("web", "nginx:1.25"), ("cache", "redis:7.2")]
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]


def test_server_side_apply_conflict_then_force_conflicts(kubectl, namespace):
    kubectl("-n", namespace, "apply", "--server-side", "--field-manager", "team-a", "-f", "-", input=PATCH_DEMO)
    mine = yaml.safe_load(PATCH_DEMO)
    mine["spec"]["replicas"] = 5
    result = kubectl("-n", namespace, "apply", "--server-side", "--field-manager", "team-b", "-f", "-",
                     input=yaml.safe_dump(mine), check=False)
    assert result.returncode != 0
    assert 'conflict with "team-a"' in result.stderr and ".spec.replicas" in result.stderr
    assert get(kubectl, namespace, "deployment", "patch-demo")["spec"]["replicas"] == 2

    kubectl("-n", namespace, "apply", "--server-side", "--field-manager", "team-b", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump(mine))
    obj = get(kubectl, namespace, "deployment", "patch-demo")
    assert obj["spec"]["replicas"] == 5
    owners = {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"] if e["operation"] == "Apply"}
    assert "f:replicas" in owners["team-b"]["f:spec"] and "f:replicas" not in owners["team-a"]["f:spec"]


def test_moving_from_client_side_to_server_side_apply(kubectl, namespace):
    # The "Server-Side Apply" docs: a field client-side apply set conflicts if --server-side changes it ...
    kubectl("-n", namespace, "apply", "-f", "-", input=PATCH_DEMO)
    changed = yaml.safe_load(PATCH_DEMO)
    changed["spec"]["replicas"] = 3
    result = kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(changed), check=False)
    assert result.returncode != 0
    assert ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
            in result.stderr)
    # ... while an unchanged --server-side apply succeeds and kubectl migrates ownership to its "kubectl" manager,
    kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=PATCH_DEMO)
    managers = {(e["manager"], e["operation"])
                for e in get(kubectl, namespace, "deployment", "patch-demo")["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers and ("kubectl-client-side-apply", "Update") not in managers
    # after which the change applies without conflicts.
    kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(changed))
    assert get(kubectl, namespace, "deployment", "patch-demo")["spec"]["replicas"] == 3


def test_kubectl_scale_takes_replicas_from_the_applier(kubectl, namespace):
    kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=PATCH_DEMO)
    kubectl("-n", namespace, "scale", "deployment", "patch-demo", "--replicas", "4")
    result = kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=PATCH_DEMO, check=False)
    assert result.returncode != 0
    assert 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' in result.stderr
    assert get(kubectl, namespace, "deployment", "patch-demo")["spec"]["replicas"] == 4
