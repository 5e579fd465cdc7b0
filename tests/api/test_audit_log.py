"""The audit log through real kubectl and curl as users, an impersonator and a ServiceAccount: audit.k8s.io/v1
Events per request stage at the policy's level (RequestReceived, ResponseStarted for watches, ResponseComplete;
omitStages), one auditID per request sent back as Audit-Id, Pod Security's annotations, the owner's file only,
rotated by size."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

from tests.api.conftest import (run_kubectl, service_account_kubeconfig, start_server, stop_server,
                                user_kubeconfig)
from tests.waiting import wait_until

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
    omitStages: [RequestReceived]
  - level: RequestResponse
    namespaces: [audited]
    resources: [{group: "", resources: [configmaps]}]
  - level: Metadata
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-audit")
    (data_dir / "policy.yaml").write_text(POLICY)
    log = data_dir / "audit" / "audit.log"
    proc, server = start_server(data_dir, "--disable-controllers", "--audit-log-path", str(log),
                                "--audit-policy-file", str(data_dir / "policy.yaml"), "--audit-log-maxsize", "1",
                                "--audit-log-maxbackup", "2")
    try:
        yield server, log, user_kubeconfig(data_dir, tmp_path_factory.mktemp("kc"), "alice")
    finally:
        stop_server(proc)


def events(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def find(log, stage: str = "ResponseComplete", **where) -> list[dict]:
    """Events of `stage` whose objectRef fields (resource, name, namespace) and other fields match."""
    def matches(e):
        if stage and e["stage"] != stage:
            return False
        ref = e.get("objectRef") or {}
        return all((ref.get(k) if k in ("resource", "name", "namespace") else e.get(k)) == v
                   for k, v in where.items())
    return [e for e in events(log) if matches(e)]


def test_each_request_is_one_event_at_its_policys_level(cluster):
    server, log, alice = cluster
    assert run_kubectl(server.kubeconfig, "create", "namespace", "audited").returncode == 0
    assert run_kubectl(server.kubeconfig, "create", "configmap", "game", "-n", "audited",
                       "--from-literal=lives=3").returncode == 0
    assert run_kubectl(server.kubeconfig, "create", "secret", "generic", "db", "-n", "audited",
                       "--from-literal=password=do-not-log-me").returncode == 0
    denied = run_kubectl(alice, "get", "secret", "db", "-n", "audited")
    assert denied.returncode != 0

    created = wait_until("configmap event", lambda: find(log, resource="configmaps", name="game", verb="create"))[0]
    assert created["apiVersion"] == "audit.k8s.io/v1" and created["kind"] == "Event"
    assert created["level"] == "RequestResponse" and created["stage"] == "ResponseComplete"
    assert created["user"]["username"] == "kubernetes-admin" and "system:masters" in created["user"]["groups"]
    assert created["objectRef"] == {"resource": "configmaps", "namespace": "audited", "name": "game",
                                    "apiVersion": "v1"}
    assert created["responseStatus"]["code"] == 201 and created["sourceIPs"] == ["127.0.0.1"]
    assert created["requestObject"]["data"] == {"lives": "3"}
    assert created["responseObject"]["metadata"]["uid"]
    assert created["userAgent"].startswith("kubectl")
    # the policy logs every stage: the same request was received first, without a response yet
    received = [e for e in find(log, stage="RequestReceived", resource="configmaps", verb="create")
                if e["auditID"] == created["auditID"]]
    assert len(received) == 1 and "responseStatus" not in received[0] and "requestObject" not in received[0]
    assert received[0]["stageTimestamp"] == received[0]["requestReceivedTimestamp"] == \
        created["requestReceivedTimestamp"]

    secret = wait_until("secret event", lambda: find(log, resource="secrets", name="db", verb="create"))[0]
    assert secret["level"] == "Metadata" and "requestObject" not in secret and "responseObject" not in secret
    assert not [e for e in events(log) if e["auditID"] == secret["auditID"] and e["stage"] != "ResponseComplete"], \
        "the secrets rule omits RequestReceived"
    refused = wait_until("the refused get",
                         lambda: [e for e in find(log, resource="secrets", name="db", verb="get")
                                  if e["user"]["username"] == "alice"])[0]
    assert refused["responseStatus"]["code"] == 403
    assert "do-not-log-me" not in log.read_text() and "ZG8tbm90LWxvZy1tZQ" not in log.read_text()
    assert not [e for e in events(log) if e["requestURI"].startswith(("/healthz", "/readyz"))]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_log_rotates_by_size_keeping_its_backups(cluster):
    server, log, _ = cluster
    big = log.parent.parent / "big.txt"
    big.write_text("x" * 300_000)
    for i in range(8):  # each create is logged with its body and the response (~600 KB an event)
        assert run_kubectl(server.kubeconfig, "create", "configmap", f"big{i}", "-n", "audited",
                           f"--from-file=v={big}").returncode == 0
    wait_until("rotated files", lambda: (log.parent / "audit.log.2").exists())
    assert not (log.parent / "audit.log.3").exists(), "--audit-log-maxbackup 2"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in log.parent.iterdir())


def test_a_watch_is_logged_when_it_starts_and_when_it_ends_under_one_audit_id(cluster, tmp_path):
    server, log, _ = cluster
    watched = run_kubectl(server.kubeconfig, "get", "configmaps", "-n", "audited", "--watch",
                          "--request-timeout=2s", "-v=8")
    audit_ids = {line.split("Audit-Id: ", 1)[1].split()[0] for line in watched.stderr.splitlines()
                 if "Audit-Id: " in line}
    assert audit_ids, "every response carries the request's Audit-Id"

    def watch_events():
        found = [e for e in events(log) if e["verb"] == "watch" and e["auditID"] in audit_ids]
        return found if len(found) >= 3 else None
    watches = wait_until("the watch's end logged (the server sees the client go)", watch_events, timeout=30)
    assert [e["stage"] for e in watches] == ["RequestReceived", "ResponseStarted", "ResponseComplete"], watches
    started = watches[1]
    assert started["responseStatus"]["code"] == 200 and started["objectRef"]["resource"] == "configmaps"
    # an ordinary request has no ResponseStarted
    run_kubectl(server.kubeconfig, "get", "configmap", "game", "-n", "audited", check=True)
    gets = wait_until("the get's events", lambda: [e for e in events(log) if e["verb"] == "get"
                                                  and (e.get("objectRef") or {}).get("name") == "game"])
    assert {e["stage"] for e in gets} == {"RequestReceived", "ResponseComplete"}
    # a client's own Audit-ID is kept, as upstream
    ca, url = server.data_dir / "pki" / "ca.crt", server.url
    headers = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", str(ca), "--cert",
                              str(server.data_dir / "pki" / "admin.crt"), "--key",
                              str(server.data_dir / "pki" / "admin.key"), "-H", "Audit-ID: mine-123",
                              f"{url}/api/v1/namespaces/audited/configmaps/game"],
                             capture_output=True, text=True, timeout=30).stdout
    assert "Audit-Id: mine-123" in headers, headers
    assert wait_until("curl's event", lambda: find(log, auditID="mine-123"))


def test_impersonation_service_accounts_and_pod_security_show_in_the_events(cluster, tmp_path):
    server, log, _ = cluster
    assert run_kubectl(server.kubeconfig, "get", "configmaps", "-n", "audited", "--as", "bob",
                       "--as-group", "devs").returncode != 0  # bob has no role: 403, still audited
    as_bob = wait_until("bob's list", lambda: [e for e in find(log, resource="configmaps", verb="list")
                                               if e.get("impersonatedUser")])[0]
    assert as_bob["user"]["username"] == "kubernetes-admin"
    assert as_bob["impersonatedUser"]["username"] == "bob" and "devs" in as_bob["impersonatedUser"]["groups"]
    assert as_bob["responseStatus"]["code"] == 403

    robot = service_account_kubeconfig(server.kubeconfig, server.url, server.data_dir / "pki" / "ca.crt",
                                       tmp_path, "audited", "robot")
    assert run_kubectl(robot, "get", "secrets", "-n", "audited").returncode != 0
    by_robot = wait_until("the ServiceAccount's list", lambda: [
        e for e in find(log, resource="secrets", verb="list")
        if e["user"]["username"] == "system:serviceaccount:audited:robot"])[0]
    assert {"system:serviceaccounts", "system:serviceaccounts:audited"} <= set(by_robot["user"]["groups"])
    assert by_robot["responseStatus"]["code"] == 403

    assert run_kubectl(server.kubeconfig, "label", "namespace", "audited",
                       "pod-security.kubernetes.io/audit=restricted").returncode == 0
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loose", "namespace": "audited"},
           "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}}
    assert run_kubectl(server.kubeconfig, "create", "-f", "-", input=json.dumps(pod)).returncode == 0
    made = wait_until("the pod's event", lambda: find(log, resource="pods", name="loose", verb="create"))[0]
    assert made["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "privileged:latest"
    assert made["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false')
