"""kfab.client's kubeconfig loading: what the controllers, scheduler and hollow nodes connect with, and the
errors a broken kubeconfig gets (naming the file and the field)."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys

import pytest
import yaml

from kfab.client import KubeconfigError, load_kubeconfig
from kfab.client.client import Client
from kfab.objects.registry import REGISTRY
from kfab.pki import ensure_control_plane_pki, issue_client_cert, write_kubeconfig


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return ensure_control_plane_pki(tmp_path_factory.mktemp("pki"), ["localhost"], ["127.0.0.1"])


def test_client_certificate_kubeconfig(pki, tmp_path):
    path = write_kubeconfig(tmp_path / "admin.kubeconfig", "https://127.0.0.1:6443", pki.ca_cert_pem,
                            pki.admin_cert_pem, pki.admin_key_pem, user="kubernetes-admin")
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:6443" and cfg.user == "kubernetes-admin"
    assert isinstance(cfg.ssl_context, ssl.SSLContext) and cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert cfg.headers == {}


def test_token_and_ca_file_kubeconfig(pki, tmp_path):
    (tmp_path / "ca.crt").write_bytes(pki.ca_cert_pem)
    (tmp_path / "token").write_text("s3cret\n")
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1/", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))
    cfg = load_kubeconfig(path)
    assert cfg.headers == {"Authorization": "Bearer s3cret"} and cfg.server == "https://127.0.0.1:1"


def test_issued_user_certificate_loads(pki, tmp_path):
    cert, key = issue_client_cert(pki, "system:kube-controller-manager", [])
    path = write_kubeconfig(tmp_path / "cm.kubeconfig", "https://127.0.0.1:6443", pki.ca_cert_pem, cert, key)
    assert load_kubeconfig(path).ssl_context


@pytest.mark.parametrize("doc,message", [
    ("just text", "is not a mapping"),
    ("a: [", "not valid YAML"),
    ({"current-context": "nope", "contexts": []}, "context 'nope' not found"),
    ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "gone"}}]},
     "names cluster 'gone', which is missing"),
    ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
      "clusters": [{"name": "c", "cluster": {"server": "https://h", "certificate-authority-data": "@@@"}}]},
     "certificate-authority-data is not valid base64"),
    ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
      "clusters": [{"name": "c", "cluster": {"server": "https://h", "insecure-skip-tls-verify": True}}],
      "users": [{"name": "u", "user": {"client-certificate-data": base64.b64encode(b"x").decode()}}]},
     "needs both client-certificate and client-key"),
])
def test_broken_kubeconfigs_are_named_in_the_error(tmp_path, doc, message):
    path = tmp_path / "broken.kubeconfig"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    with pytest.raises(KubeconfigError) as e:
        load_kubeconfig(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_missing_kubeconfig_is_a_clear_command_error(tmp_path):
    missing = tmp_path / "none.kubeconfig"
    for command in (["controller-manager"], ["hollow-node", "--count", "1"]):
        result = subprocess.run([sys.executable, "-m", "kfab", *command, "--kubeconfig", str(missing)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and f"cannot read kubeconfig {missing}" in result.stderr


def test_unknown_controller_name_is_rejected(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kfab", "controller-manager", "--kubeconfig", str(tmp_path / "k"),
                             "--controllers", "deployment,nosuch"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown controllers ['nosuch']" in result.stderr


def test_request_paths_follow_the_api_layout():
    c = Client.__new__(Client)
    pods, deploys, nodes = (REGISTRY.by_kind("v1", "Pod"), REGISTRY.by_kind("apps/v1", "Deployment"),
                            REGISTRY.by_kind("v1", "Node"))
    assert c.path(pods, "ns", "p", "binding") == "/api/v1/namespaces/ns/pods/p/binding"
    assert c.path(deploys, "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert c.path(deploys) == "/apis/apps/v1/deployments"
    assert c.path(nodes, "ignored", "n1") == "/api/v1/nodes/n1"
