"""A kopf operator (tests/api/operators/kopf_children.py) runs against kfab with `kopf run`, as its users run it:
children with owner references, handler results in status, deletion held by its finalizer until its delete
handler ran, children garbage-collected afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import stop_server
from tests.waiting import wait_until

OPERATOR = Path(__file__).parent / "operators" / "kopf_children.py"
GROUP = "kopf.kfab.test"
CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: greetings.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: greetings, singular: greeting, kind: Greeting}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              who: {{type: string}}
          status: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


@pytest.fixture
def operator(kfab_server, kubectl, namespace, tmp_path):
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=Established", f"crd/greetings.{GROUP}", "--timeout=20s")
    log = tmp_path / "kopf.log"
    env = dict(os.environ, KUBECONFIG=str(kfab_server.kubeconfig))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kopf"), "run", "--standalone", "-n", namespace,
                             "--liveness=http://127.0.0.1:0/healthz", str(OPERATOR)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_until("kopf to log in",
                   lambda: "Initial authentication has finished" in log.read_text() or proc.poll() is not None, 30)
        assert proc.poll() is None, log.read_text()
        yield log
    finally:
        stop_server(proc)  # SIGTERM, SIGKILL if kopf lingers
        kubectl("delete", "crd", f"greetings.{GROUP}", "--timeout=30s", check=False)


def _get(k8s, namespace: str, name: str) -> dict | None:
    from kubernetes import client

    try:
        return client.CustomObjectsApi(k8s).get_namespaced_custom_object(GROUP, "v1", namespace, "greetings", name)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def _config_map(k8s, namespace: str, name: str):
    from kubernetes import client

    try:
        return client.CoreV1Api(k8s).read_namespaced_config_map(name, namespace)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def test_kopf_operator_creates_children_reports_status_and_finalizes(operator, k8s, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-",
            input=f"apiVersion: {GROUP}/v1\nkind: Greeting\nmetadata: {{name: alice}}\nspec: {{who: Alice}}\n")
    child = wait_until("the child ConfigMap", lambda: _config_map(k8s, namespace, "alice-greeting"), 30)
    greeting = _get(k8s, namespace, "alice")
    assert child.data == {"text": "hello Alice"}
    ref = child.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Greeting", "alice", greeting["metadata"]["uid"], True)

    status = wait_until("the handler result in status",
                        lambda: (_get(k8s, namespace, "alice") or {}).get("status", {}).get("create_fn"), 30)
    assert status == {"child": "alice-greeting"}
    assert any(f.startswith("kopf.zalando.org/") for f in _get(k8s, namespace, "alice")["metadata"]["finalizers"])

    kubectl("delete", "-n", namespace, f"greetings.{GROUP}", "alice", "--wait=false")
    wait_until("kopf to release its finalizer", lambda: _get(k8s, namespace, "alice") is None, 30)
    farewell = _config_map(k8s, namespace, "alice-farewell")
    assert farewell is not None and farewell.data == {"said": "goodbye"}, operator.read_text()
    wait_until("the garbage collector to delete the child",
               lambda: _config_map(k8s, namespace, "alice-greeting") is None, 30)
