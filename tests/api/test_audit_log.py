"""The audit log through real kubectl: one audit.k8s.io/v1 Event per request at the policy's level, the
owner's file only, rotated by size."""

from __future__ import annotations

import json
import stat

import pytest

from tests.api.conftest import run_kubectl, start_server, stop_server, user_kubeconfig
from tests.waiting import wait_until

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
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


def find(log, **where) -> list[dict]:
    def matches(e):
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

    secret = wait_until("secret event", lambda: find(log, resource="secrets", name="db", verb="create"))[0]
    assert secret["level"] == "Metadata" and "requestObject" not in secret and "responseObject" not in secret
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
