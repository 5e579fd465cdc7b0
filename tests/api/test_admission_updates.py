"""What kubectl users meet on updates and previews: immutable fields, server dry-run, headless Services."""

from __future__ import annotations

import json

from tests.api.test_admission_kubectl import NGINX_DEPLOYMENT, _swap

WEB_STATEFULSET = """\
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "nginx"
  replicas: 3
  minReadySeconds: 10
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "my-storage-class"
      resources:
        requests:
          storage: 1Gi
"""

BUSYBOX_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
spec:
  containers:
  - name: sleeper
    image: busybox:1.36
    command: ["sleep", "3600"]
    ports:
    - containerPort: 8080
"""


def get_json(kubectl, namespace, ref):
    return json.loads(kubectl("get", "-n", namespace, ref, "-o", "json").stdout)


def test_statefulset_and_headless_service_from_the_docs(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=WEB_STATEFULSET)
    sts = get_json(kubectl, namespace, "statefulset/web")["spec"]
    assert sts["podManagementPolicy"] == "OrderedReady"
    assert sts["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert sts["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    svc = get_json(kubectl, namespace, "service/nginx")["spec"]
    assert svc["clusterIP"] == "None" and svc["clusterIPs"] == ["None"]
    row = kubectl("get", "-n", namespace, "service", "nginx", "--no-headers").stdout.split()
    assert row[:3] == ["nginx", "ClusterIP", "None"]


def test_server_dry_run_shows_values_but_holds_none(kubectl, namespace):
    manifest = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: preview\nspec:\n  type: NodePort\n"
                "  ports:\n  - port: 80\n")
    preview = json.loads(kubectl("apply", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-",
                                 input=manifest).stdout)
    node_port = preview["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767 and preview["spec"]["clusterIP"]
    assert kubectl("get", "-n", namespace, "services", "-o", "name").stdout == ""
    # The previewed port was never taken: asking for it explicitly works.
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest + f"    nodePort: {node_port}\n")
    assert get_json(kubectl, namespace, "service/preview")["spec"]["ports"][0]["nodePort"] == node_port


def test_pod_spec_is_immutable_except_image(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=BUSYBOX_POD)
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=_swap(BUSYBOX_POD, "8080", "9090"), check=False)
    assert refused.returncode != 0
    assert ('The Pod "sleeper" is invalid: spec: Forbidden: pod updates may not change fields other than '
            "`spec.containers[*].image`") in refused.stderr
    kubectl("apply", "-n", namespace, "-f", "-", input=_swap(BUSYBOX_POD, "busybox:1.36", "busybox:1.37"))
    pod = get_json(kubectl, namespace, "pod/sleeper")
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert pod["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080


def test_deployment_selector_is_immutable(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=NGINX_DEPLOYMENT)
    changed = NGINX_DEPLOYMENT.replace("app: nginx", "app: web")
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=changed, check=False)
    assert refused.returncode != 0
    assert ('The Deployment "nginx-deployment" is invalid: spec.selector: Invalid value: '
            '{"matchLabels":{"app":"web"}}: field is immutable') in refused.stderr
    stored = get_json(kubectl, namespace, "deployment/nginx-deployment")
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}


def test_labels_are_checked_on_patch(kubectl, namespace):
    # kubectl label checks values itself (with the same words); a patch leaves it to the server.
    kubectl("create", "configmap", "-n", namespace, "settings", "--from-literal=a=1")
    refused = kubectl("patch", "-n", namespace, "configmap/settings", "--type=merge",
                      "-p", '{"metadata":{"labels":{"tier":"front end"}}}', check=False)
    assert refused.returncode != 0
    assert ('The ConfigMap "settings" is invalid: metadata.labels: Invalid value: "front end": a valid label must be '
            "an empty string or consist of alphanumeric characters") in refused.stderr
    assert "tier" not in (get_json(kubectl, namespace, "configmap/settings")["metadata"].get("labels") or {})


def test_imperative_create_and_expose_get_defaults_and_a_node_port(kubectl, namespace):
    kubectl("create", "deployment", "-n", namespace, "web", "--image=nginx:1.25", "--replicas=2", "--port=80")
    spec = get_json(kubectl, namespace, "deployment/web")["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate" and spec["replicas"] == 2
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    kubectl("expose", "-n", namespace, "deployment", "web", "--port=80", "--type=NodePort")
    svc = get_json(kubectl, namespace, "service/web")["spec"]
    assert svc["selector"] == {"app": "web"} and svc["ports"][0]["targetPort"] == 80
    assert 30000 <= svc["ports"][0]["nodePort"] <= 32767
