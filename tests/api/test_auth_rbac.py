"""Authentication and RBAC on a real kfab server, judged by real kubectl, curl-like requests and the official client."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from kfab.pki.kubeconfig import write_kubeconfig
from tests.api.conftest import run_kubectl, start_server, stop_server, user_kubeconfig
from tests.waiting import wait_until

def _ca_context(kfab_server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(Path(kfab_server.data_dir) / "pki" / "ca.crt"))


def _http(kfab_server, path: str, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(kfab_server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=_ca_context(kfab_server), timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_request_without_credentials_is_401_unauthorized(kfab_server):
    code, body = _http(kfab_server, "/api/v1/namespaces")
    assert code == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and body["code"] == 401


def test_unknown_bearer_token_is_401(kfab_server):
    code, body = _http(kfab_server, "/api/v1/namespaces", {"Authorization": "Bearer not-a-real-token"})
    assert code == 401 and body["reason"] == "Unauthorized"


def test_admin_kubeconfig_from_kfab_kubeconfig_works(kfab_server, tmp_path):
    out = tmp_path / "admin.kubeconfig"
    subprocess.run(["kfab", "kubeconfig", "--data-dir", str(kfab_server.data_dir), "-o", str(out)],
                   check=True, capture_output=True, timeout=60)
    proc = run_kubectl(out, "get", "namespaces", "-o", "name", check=True)
    assert "namespace/default" in proc.stdout.split()


def test_user_without_bindings_is_forbidden(kfab_server, tmp_path, namespace):
    alice = user_kubeconfig(kfab_server.data_dir, tmp_path, "alice-nobind")
    proc = run_kubectl(alice, "get", "pods", "-n", namespace)
    assert proc.returncode != 0
    assert (f'pods is forbidden: User "alice-nobind" cannot list resource "pods" in API group "" '
            f'in the namespace "{namespace}"') in proc.stderr


def test_rolebinding_grants_exactly_its_namespace(kfab_server, tmp_path, namespace):
    user = f"alice-{uuid.uuid4().hex[:6]}"
    alice = user_kubeconfig(kfab_server.data_dir, tmp_path, user)
    run_kubectl(kfab_server.kubeconfig, "create", "configmap", "app-config", "-n", namespace,
             "--from-literal=mode=prod", check=True)
    run_kubectl(kfab_server.kubeconfig, "create", "rolebinding", f"{user}-view", "--clusterrole=view",
             f"--user={user}", "-n", namespace, check=True)

    wait_until(f"{user} to be allowed to list configmaps in {namespace}",
               lambda: run_kubectl(alice, "get", "configmaps", "-n", namespace).returncode == 0)
    proc = run_kubectl(alice, "get", "configmap", "app-config", "-n", namespace, "-o", "jsonpath={.data.mode}",
                    check=True)
    assert proc.stdout == "prod"
    # view does not grant writes, nor anything in other namespaces, nor Secrets
    denied = run_kubectl(alice, "delete", "configmap", "app-config", "-n", namespace)
    assert denied.returncode != 0 and "forbidden" in denied.stderr
    assert run_kubectl(alice, "get", "configmaps", "-n", "default").returncode != 0
    assert run_kubectl(alice, "get", "secrets", "-n", namespace).returncode != 0
    assert run_kubectl(kfab_server.kubeconfig, "get", "configmap", "app-config", "-n", namespace).returncode == 0


def test_group_from_the_certificate_is_honoured(kfab_server, tmp_path, namespace):
    group = f"devs-{uuid.uuid4().hex[:6]}"
    bob = user_kubeconfig(kfab_server.data_dir, tmp_path, "bob", group)
    run_kubectl(kfab_server.kubeconfig, "create", "rolebinding", f"{group}-edit", "--clusterrole=edit",
             f"--group={group}", "-n", namespace, check=True)
    wait_until(f"group {group} to be allowed to create deployments",
               lambda: run_kubectl(bob, "auth", "can-i", "create", "deployments.apps", "-n", namespace).returncode == 0)
    run_kubectl(bob, "create", "configmap", "made-by-bob", "-n", namespace, "--from-literal=a=b", check=True)


def test_kubectl_auth_can_i_answers_yes_and_no(kfab_server, tmp_path, namespace):
    carol = user_kubeconfig(kfab_server.data_dir, tmp_path, "carol")
    yes = run_kubectl(kfab_server.kubeconfig, "auth", "can-i", "delete", "nodes")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    no = run_kubectl(carol, "auth", "can-i", "list", "pods", "-n", namespace)
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    # Everyone may ask (system:basic-user) and read discovery (system:discovery).
    url = run_kubectl(carol, "auth", "can-i", "get", "/version")
    assert (url.returncode, url.stdout.strip()) == (0, "yes")
    assert run_kubectl(carol, "api-resources", "-o", "name").returncode == 0


def test_bearer_token_works_with_the_official_client(token_server):
    from kubernetes import client

    api = client.CoreV1Api(token_server.api_client("admin-token"))
    names = [ns.metadata.name for ns in api.list_namespace().items]
    assert "default" in names

    viewer = client.CoreV1Api(token_server.api_client("viewer-token"))
    with pytest.raises(client.exceptions.ApiException) as e:
        viewer.list_namespace()
    assert e.value.status == 403
    body = json.loads(e.value.body)
    assert body["reason"] == "Forbidden"
    assert 'User "viewer" cannot list resource "namespaces"' in body["message"]

    bad = client.CoreV1Api(token_server.api_client("wrong-token"))
    with pytest.raises(client.exceptions.ApiException) as e:
        bad.list_namespace()
    assert e.value.status == 401


TOKENS = """admin-token,token-admin,1,"system:masters"
viewer-token,viewer,2
"""


class _TokenServer:
    def __init__(self, server, tmp: Path):
        self.server, self.tmp = server, tmp

    def api_client(self, token: str):
        """An official-client ApiClient from a token kubeconfig (as a user would write one)."""
        from kubernetes import config

        path = write_kubeconfig(self.tmp / f"{token}.kubeconfig", self.server.url,
                                (Path(self.server.data_dir) / "pki" / "ca.crt").read_bytes(), token=token,
                                user=token)
        return config.new_client_from_config(config_file=str(path))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """A second kfab server started with --token-auth-file (the session server has no tokens)."""
    data_dir = tmp_path_factory.mktemp("kfab-token-server")
    tokens = data_dir / "tokens.csv"
    tokens.write_text(TOKENS)
    tokens.chmod(0o600)
    proc, server = start_server(data_dir, "--token-auth-file", str(tokens), "-v")
    try:
        yield _TokenServer(server, data_dir)
    finally:
        stop_server(proc)


def test_malformed_token_file_stops_the_server_with_file_and_line(tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('good-token,alice,1\nbroken-line,bob\n')
    proc = subprocess.run(["kfab", "server", "--data-dir", str(tmp_path / "data"), "--port", "0",
                           "--token-auth-file", str(tokens)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"token file {tokens}, line 2: must have at least 3 columns" in proc.stderr
    assert "broken-line" not in proc.stderr + proc.stdout  # tokens never reach output
    assert not (tmp_path / "data" / "admin.kubeconfig").exists()


def test_tokens_and_secret_values_never_reach_the_server_log(token_server):
    from kubernetes import client

    admin = client.CoreV1Api(token_server.api_client("admin-token"))
    secret_value = "hunter2-" + uuid.uuid4().hex
    admin.create_namespaced_secret("default", {"metadata": {"name": "db-password"},
                                               "stringData": {"password": secret_value}})
    try:
        read = admin.read_namespaced_secret("db-password", "default")
        assert read.data["password"]  # served (base64) to the admin
        with pytest.raises(client.exceptions.ApiException):
            client.CoreV1Api(token_server.api_client("viewer-token")).read_namespaced_secret("db-password", "default")
    finally:
        admin.delete_namespaced_secret("db-password", "default")
    log = Path(token_server.server.log).read_text()  # the server runs with -v
    assert "listening on" in log
    import base64
    for secret in ("admin-token", "viewer-token", secret_value, base64.b64encode(secret_value.encode()).decode()):
        assert secret not in log
