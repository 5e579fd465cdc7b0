"""Everyday kubectl against kfab, with the Kubernetes docs' manifests: what a user types, what they see."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.api.conftest import KUBECTL

MANIFESTS = Path(__file__).parent / "manifests"


def manifest(name: str) -> str:
    return str(MANIFESTS / name)


def get_json(kubectl, namespace, *what):
    return json.loads(kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def test_apply_create_change_reapply(kubectl, namespace, tmp_path):
    out = kubectl("apply", "-n", namespace, "-f", manifest("nginx-deployment.yaml")).stdout
    assert out.strip() == "deployment.apps/nginx-deployment created"
    assert kubectl("apply", "-n", namespace, "-f", manifest("nginx-deployment.yaml")).stdout.strip() == \
        "deployment.apps/nginx-deployment unchanged"

    changed = yaml.safe_load(Path(manifest("nginx-deployment.yaml")).read_text())
    changed["spec"]["replicas"] = 5
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(changed))
    assert kubectl("apply", "-n", namespace, "-f", str(tmp_path / "d.yaml")).stdout.strip() == \
        "deployment.apps/nginx-deployment configured"
    dep = get_json(kubectl, namespace, "deployment", "nginx-deployment")
    assert dep["spec"]["replicas"] == 5
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"
    assert dep["metadata"]["generation"] == 2


def test_get_output_formats(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", manifest("game-demo-configmap.yaml"))
    as_yaml = yaml.safe_load(kubectl("get", "configmap", "game-demo", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml["data"]["player_initial_lives"] == "3"
    assert "enemy.types=aliens,monsters" in as_yaml["data"]["game.properties"]
    as_json = get_json(kubectl, namespace, "cm", "game-demo")
    assert as_json["metadata"]["namespace"] == namespace and as_json["kind"] == "ConfigMap"
    names = kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert [n for n in names if n != "configmap/kube-root-ca.crt"] == ["configmap/game-demo"]
    jsonpath = kubectl("get", "cm", "game-demo", "-n", namespace, "-o", "jsonpath={.data.player_initial_lives}")
    assert jsonpath.stdout == "3"
    table = kubectl("get", "cm", "game-demo", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert table[1].split()[:2] == ["game-demo", "4"]


def test_multi_document_apply_and_get_all(kubectl, namespace):
    out = kubectl("apply", "-n", namespace, "-f", manifest("web-statefulset.yaml"),
                  "-f", manifest("nginx-service.yaml")).stdout.splitlines()
    assert out == ["service/nginx created", "statefulset.apps/web created", "service/nginx-service created"]
    svc = get_json(kubectl, namespace, "svc", "nginx")
    assert svc["spec"]["clusterIP"] == "None"
    sts = kubectl("get", "sts", "web", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert sts[0].split()[:3] == ["NAME", "READY", "AGE"]
    listed = set(kubectl("get", "all", "-n", namespace, "-o", "name").stdout.split())
    # (plus the pods kfab server's StatefulSet controller starts creating)
    assert {"service/nginx", "service/nginx-service", "statefulset.apps/web"} <= listed


def test_server_side_apply_then_reapply(kubectl, namespace):
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", manifest("nginx-deployment.yaml")).stdout
    assert out.strip() == "deployment.apps/nginx-deployment serverside-applied"
    kubectl("apply", "--server-side", "-n", namespace, "-f", manifest("nginx-deployment.yaml"))
    entries = get_json(kubectl, namespace, "deploy", "nginx-deployment", "--show-managed-fields")["metadata"][
        "managedFields"]
    assert [m["manager"] for m in entries if m["operation"] == "Apply"] == ["kubectl"]


def test_create_and_create_again(kubectl, namespace):
    assert kubectl("create", "-n", namespace, "-f", manifest("game-demo-configmap.yaml")).stdout.strip() == \
        "configmap/game-demo created"
    again = kubectl("create", "-n", namespace, "-f", manifest("game-demo-configmap.yaml"), check=False)
    assert again.returncode != 0
    assert 'configmaps "game-demo" already exists' in again.stderr


def test_typed_create_commands(kubectl, namespace):
    """These kubectl commands send protobuf bodies."""
    kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", "--port=80", "-n", namespace)
    kubectl("create", "service", "clusterip", "web", "--tcp=80:80", "-n", namespace)
    kubectl("create", "configmap", "settings", "--from-literal=mode=fast", "-n", namespace)
    kubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cret", "-n", namespace)
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    dep = get_json(kubectl, namespace, "deploy", "web")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert get_json(kubectl, namespace, "cm", "settings")["data"] == {"mode": "fast"}
    assert get_json(kubectl, namespace, "secret", "creds")["data"] == {"password": "czNjcmV0"}
    assert get_json(kubectl, namespace, "svc", "web")["spec"]["selector"] == {"app": "web"}


def test_label_and_annotate(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", manifest("game-demo-configmap.yaml"))
    kubectl("label", "cm", "game-demo", "tier=game", "-n", namespace)
    kubectl("annotate", "cm", "game-demo", "owner=team-a", "-n", namespace)
    refused = kubectl("label", "cm", "game-demo", "tier=other", "-n", namespace, check=False)
    assert refused.returncode != 0 and "already has a value (game)" in refused.stderr
    kubectl("label", "cm", "game-demo", "tier=other", "--overwrite", "-n", namespace)
    meta = get_json(kubectl, namespace, "cm", "game-demo")["metadata"]
    assert meta["labels"] == {"tier": "other"} and meta["annotations"]["owner"] == "team-a"
    assert kubectl("get", "cm", "-l", "tier=other", "-n", namespace, "-o", "name").stdout.split() == \
        ["configmap/game-demo"]
    kubectl("label", "cm", "game-demo", "tier-", "-n", namespace)
    assert "labels" not in get_json(kubectl, namespace, "cm", "game-demo")["metadata"]


def test_scale(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", manifest("nginx-deployment.yaml"))
    assert kubectl("scale", "deployment/nginx-deployment", "--replicas=1", "-n", namespace).stdout.strip() == \
        "deployment.apps/nginx-deployment scaled"
    assert get_json(kubectl, namespace, "deploy", "nginx-deployment")["spec"]["replicas"] == 1
    wrong = kubectl("scale", "deployment/nginx-deployment", "--current-replicas=7", "--replicas=2", "-n",
                    namespace, check=False)
    assert wrong.returncode != 0
    assert get_json(kubectl, namespace, "deploy", "nginx-deployment")["spec"]["replicas"] == 1


def test_edit_with_kube_editor(kubectl, namespace, tmp_path):
    kubectl("apply", "-n", namespace, "-f", manifest("game-demo-configmap.yaml"))
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\n"
                      "path = sys.argv[1]\n"
                      "text = open(path).read().replace('player_initial_lives: \"3\"', 'player_initial_lives: \"9\"')\n"
                      "open(path, 'w').write(text)\n")
    out = kubectl("edit", "cm", "game-demo", "-n", namespace, env={"KUBE_EDITOR": f"{sys.executable} {editor}"})
    assert out.stdout.strip() == "configmap/game-demo edited"
    assert get_json(kubectl, namespace, "cm", "game-demo")["data"]["player_initial_lives"] == "9"


def test_delete_by_file_and_by_label(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", manifest("web-statefulset.yaml"))
    kubectl("delete", "-n", namespace, "-f", manifest("web-statefulset.yaml"))
    assert kubectl("get", "sts,svc", "-n", namespace, "-o", "name").stdout.split() == []
    for name in ("a", "b", "c"):
        kubectl("create", "configmap", name, "-n", namespace)
    kubectl("label", "cm", "a", "b", "temp=yes", "-n", namespace)
    kubectl("delete", "cm", "-l", "temp=yes", "-n", namespace)
    names = set(kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split())
    assert "configmap/c" in names and not names & {"configmap/a", "configmap/b"}


def test_wait_for_a_condition_set_later(kubectl, namespace, k8s, kfab_server):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    # (a scheduler name nobody serves: kfab server's scheduler leaves the pod's conditions to this test)
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"},
                                           "spec": {"schedulerName": "tests-bind-by-hand",
                                                    "containers": [{"name": "c", "image": "busybox"}]}})
    waiter = subprocess.Popen([KUBECTL, "--kubeconfig", str(kfab_server.kubeconfig), "wait",
                               "--for=condition=Ready", "pod/p", "-n", namespace, "--timeout=30s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        core.patch_namespaced_pod_status("p", namespace, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
        out, err = waiter.communicate(timeout=40)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == "pod/p condition met"
    done = kubectl("wait", "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].status}=True", "pod/p",
                   "-n", namespace, "--timeout=10s")
    assert done.stdout.strip() == "pod/p condition met"


def test_get_watch_prints_changes(kubectl, namespace, k8s, kfab_server):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "before"}})
    watcher = subprocess.Popen([KUBECTL, "--kubeconfig", str(kfab_server.kubeconfig), "get", "configmaps", "-n",
                                namespace, "--watch", "--output-watch-events"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.split()[:2]) for line in watcher.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=30) == ["EVENT", "NAME"]
        # the listed state comes first (with kube-root-ca.crt, as every namespace): after it, kubectl is watching
        # from the list's resourceVersion
        assert [lines.get(timeout=30), lines.get(timeout=30)] == [["ADDED", "before"], ["ADDED", "kube-root-ca.crt"]]
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "seen"}})
        core.delete_namespaced_config_map("seen", namespace)
        assert [lines.get(timeout=30), lines.get(timeout=30)] == [["ADDED", "seen"], ["DELETED", "seen"]]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_api_resources_short_names(kubectl):
    header, *lines = kubectl("api-resources").stdout.splitlines()
    # a name can be served by two groups (pods, nodes: also metrics.k8s.io); a row without short names has a
    # blank column, so read the columns where the header puts them
    short_at, version_at, namespaced_at = (header.index(c) for c in ("SHORTNAMES", "APIVERSION", "NAMESPACED"))
    shorts = {(line[:short_at].strip(), line[version_at:namespaced_at].strip()): line[short_at:version_at].strip()
              for line in lines}
    for resource, version, short in (
            ("pods", "v1", "po"), ("services", "v1", "svc"), ("deployments", "apps/v1", "deploy"),
            ("replicasets", "apps/v1", "rs"), ("statefulsets", "apps/v1", "sts"), ("configmaps", "v1", "cm"),
            ("namespaces", "v1", "ns"), ("nodes", "v1", "no"), ("persistentvolumes", "v1", "pv"),
            ("persistentvolumeclaims", "v1", "pvc"), ("storageclasses", "storage.k8s.io/v1", "sc"),
            ("endpoints", "v1", "ep"),
            ("pods", "metrics.k8s.io/v1beta1", ""), ("nodes", "metrics.k8s.io/v1beta1", "")):  # as metrics-server
        assert shorts[resource, version] == short, (resource, version)
    assert kubectl("get", "po", "-n", "default", "-o", "name").returncode == 0


def test_auth_can_i_as_admin(kubectl):
    assert kubectl("auth", "can-i", "create", "deployments").stdout.strip() == "yes"


@pytest.mark.parametrize("text, message, flags", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n", "metadata.name: Invalid value: \"Bad_Name\"",
     ()),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata: {a: b}\nfoo: bar\n", 'unknown field "foo"', ()),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata: [1, 2\n", "error converting YAML to JSON", ()),
    # the kind is resolved through discovery (client-side OpenAPI validation is not what this case is about)
    ("apiVersion: v1\nkind: Widget\nmetadata:\n  name: ok\n", 'no matches for kind "Widget" in version "v1"',
     ("--validate=false",)),
])
def test_bad_manifests_are_refused_with_a_clear_error(kubectl, namespace, tmp_path, text, message, flags):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = kubectl("apply", "-n", namespace, "-f", str(path), *flags, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split() == ["configmap/kube-root-ca.crt"]


def test_malformed_json_body_is_400_status(kubectl, namespace, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ')
    result = kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/configmaps", "-f", str(path), check=False)
    assert result.returncode != 0
    # kube-apiserver's words: its decoder first reads apiVersion/kind (SimpleMetaFactory.Interpret)
    assert "couldn't get version/kind; json parse error: " in result.stderr



def test_diff_shows_only_the_change_and_stores_nothing(kubectl, namespace, tmp_path):
    kubectl("apply", "-n", namespace, "-f", manifest("game-demo-configmap.yaml"))
    changed = Path(manifest("game-demo-configmap.yaml")).read_text().replace('"3"', '"4"')
    (tmp_path / "cm.yaml").write_text(changed)
    result = kubectl("diff", "-n", namespace, "-f", str(tmp_path / "cm.yaml"), check=False)
    assert result.returncode == 1, result.stderr  # 1: there are differences
    changes = [line for line in result.stdout.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changes == ['-  player_initial_lives: "3"', '+  player_initial_lives: "4"']
    assert get_json(kubectl, namespace, "cm", "game-demo")["data"]["player_initial_lives"] == "3"


def test_auth_whoami(kubectl):
    rows = dict(line.split(None, 1) for line in kubectl("auth", "whoami").stdout.splitlines()[1:])
    assert rows["Username"].strip() == "kubernetes-admin"
    assert "system:masters" in rows["Groups"]
