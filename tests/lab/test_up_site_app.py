"""A chart-like app on the whole site (the session's `site`, installed by `kfab up`): one `kubectl apply` of a
multi-document file -- Namespace, ServiceAccount, Role/RoleBinding, a migration Job, the app's Deployment and its
PodDisruptionBudget, a CronJob, a DaemonSet -- converging on the real workers u2/u3.

The app talks to the API server as an in-cluster client does: the projected ServiceAccount token, the
KUBERNETES_SERVICE_HOST/PORT the node agent sets, the `kubernetes` Service's ClusterIP. The migration Job
writes the ConfigMap `schema` with the token (its Role grants create); the app's pods are ready only while
they can read it the same way, so the Deployment is available only if the token, the Service variables, the
ClusterIP path and RBAC all work in the pod."""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.lab.node_cluster import TLS_CLIENT_IMAGE, build_tls_client_image
from tests.lab.test_network_services import exec_in
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(2400)

NS = "shop"
WORKERS = ["u2", "u3"]
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# an in-cluster client in busybox: wget with the pod's token to the address the Service variables give
API = "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/" + NS
AUTH = f'--no-check-certificate --header "Authorization: Bearer $(cat {TOKEN})"'
MIGRATE = (f'wget -qO- {AUTH} --header "Content-Type: application/json" --post-data '
           '\'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"schema"},"data":{"version":"2"}}\' '
           f'{API}/configmaps')
SERVE = (f'while true; do if wget -qO /tmp/schema {AUTH} {API}/configmaps/schema; then touch /tmp/ready; '
         'else rm -f /tmp/ready; fi; sleep 3; done')

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: shop, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: schema, namespace: shop}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop-schema, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: schema}
subjects:
- {kind: ServiceAccount, name: shop, namespace: shop}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  backoffLimit: 6
  template:
    spec:
      serviceAccountName: shop
      restartPolicy: OnFailure
      containers:
      - {name: migrate, image: IMAGE, command: [sh, -c, MIGRATE]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      serviceAccountName: shop
      terminationGracePeriodSeconds: 1
      containers:
      - name: shop
        image: IMAGE
        command: [sh, -c, SERVE]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 3
          timeoutSeconds: 10
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: shop, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: shop}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: shop}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          automountServiceAccountToken: false
          containers:
          - {name: backup, image: IMAGE, command: [sh, -c, "echo backed up"]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: shop}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: exporter, image: IMAGE, command: [sleep, "100000"]}
"""


def _manifest(image: str) -> str:
    text = APP.replace("IMAGE", image)
    return text.replace("MIGRATE", json.dumps(MIGRATE)).replace("SERVE", json.dumps(SERVE))


def _get(site, kind: str, name: str = "") -> dict:
    return json.loads(site.kubectl("get", kind, *([name] if name else []), "-n", NS, "-o", "json").stdout)


@pytest.fixture(scope="module")
def app(site):
    """The busybox image with openssl (busybox wget does https through it) in the cluster registry, and the app
    applied in one `kubectl apply`."""
    with tempfile.TemporaryDirectory(prefix="kfab-site-app-") as tmp:
        build_tls_client_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), TLS_CLIENT_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    applied = site.kubectl("apply", "-f", "-", input=_manifest(proc.stdout.strip()))
    yield {"applied_at": time.time(), "output": applied.stdout}
    site.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_one_apply_creates_every_document(site, app):
    assert app["output"].split("\n")[:-1] == [
        "namespace/shop created", "serviceaccount/shop created",
        "role.rbac.authorization.k8s.io/schema created", "rolebinding.rbac.authorization.k8s.io/shop-schema created",
        "job.batch/migrate created", "deployment.apps/shop created",
        "poddisruptionbudget.policy/shop created", "cronjob.batch/backup created",
        "daemonset.apps/node-exporter created"], app["output"]


def test_the_migration_job_completes_writing_with_its_service_account_token(site, app):
    site.kubectl("wait", "--for=condition=Complete", "job/migrate", "-n", NS, "--timeout=240s", timeout=260)
    assert _get(site, "configmap", "schema")["data"] == {"version": "2"}


def test_the_deployment_is_available_with_pods_reading_through_their_token(site, app):
    site.kubectl("rollout", "status", "deployment/shop", "-n", NS, "--timeout=240s", timeout=260)
    status = _get(site, "deployment", "shop")["status"]
    assert (status.get("availableReplicas"), status.get("readyReplicas")) == (2, 2), status
    pod = _get(site, "pods")["items"]
    pod = next(p for p in pod if p["metadata"]["labels"].get("app") == "shop")
    # the node agent's Service variables point at the `kubernetes` Service, and the token file is the projected one
    env = exec_in(site, pod, "env | grep ^KUBERNETES_ | sort")
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1\n" in env and "KUBERNETES_SERVICE_PORT=443\n" in env, env
    assert '"version":"2"' in exec_in(site, pod, "cat /tmp/schema")
    # ...and its Role grants no more than configmaps: the same token is refused the namespace's pods
    refused = exec_in(site, pod, f"wget -qO- {AUTH} {API}/pods 2>&1; true")
    assert "403 Forbidden" in refused, refused


def test_the_daemonset_runs_one_pod_on_every_worker(site, app):
    def ready():
        status = _get(site, "daemonset", "node-exporter")["status"]
        return status if status.get("numberReady") == 2 and status.get("updatedNumberScheduled") == 2 else None
    status = wait_until("node-exporter ready on both workers", ready, timeout=240)
    assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == 2, status
    pods = [p for p in _get(site, "pods")["items"] if p["metadata"]["labels"].get("app") == "node-exporter"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == WORKERS


def test_the_budget_counts_the_apps_healthy_pods(site, app):
    site.kubectl("rollout", "status", "deployment/shop", "-n", NS, "--timeout=240s", timeout=260)

    def settled():
        status = _get(site, "pdb", "shop").get("status") or {}
        return status if status.get("currentHealthy") == 2 else None
    status = wait_until("the PDB's status to count 2 healthy pods", settled, timeout=60)
    assert (status["desiredHealthy"], status["disruptionsAllowed"], status["expectedPods"]) == (1, 1, 2), status


def test_the_cronjob_runs_a_job_on_schedule(site, app):
    def completed_job():
        jobs = [j for j in _get(site, "jobs")["items"]
                if any(r.get("kind") == "CronJob" for r in j["metadata"].get("ownerReferences") or [])]
        done = [j for j in jobs if any(c["type"] == "Complete" and c["status"] == "True"
                                       for c in j.get("status", {}).get("conditions") or [])]
        return done[0] if done else None
    # "* * * * *": the first run is at the next minute after the apply; its pod then runs on a worker
    job = wait_until("a Job of the CronJob completed", completed_job, timeout=200, interval=3)
    # started at a minute that came after the apply, and promptly (the controller's drift on real workers)
    scheduled = datetime.datetime.fromisoformat(
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].replace("Z", "+00:00"))
    created = datetime.datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert scheduled.second == 0 and scheduled.timestamp() > app["applied_at"] - 60, (scheduled, app)
    assert 0 <= (created - scheduled).total_seconds() < 15, (scheduled, created)
    scheduled = _get(site, "cronjob", "backup")["status"]
    assert scheduled.get("lastScheduleTime") and scheduled.get("lastSuccessfulTime"), scheduled
    assert site.kubectl("logs", f"job/{job['metadata']['name']}", "-n", NS).stdout.strip() == "backed up"
