"""Cluster PKI: the certificates kubectl and the API server rely on."""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import stat
import threading

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kfab.cli import main as kfab_main
from kfab.pki import (
    PKIError,
    client_ssl_context,
    ensure_control_plane_pki,
    issue_client_cert,
    server_ssl_context,
    write_kubeconfig,
)


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def pki(tmp_path):
    return ensure_control_plane_pki(tmp_path, ["cp1.example.test"], ["192.0.2.10"])


def test_certificates_chain_to_the_cluster_ca(pki):
    ca = _cert(pki.ca_cert_path)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for path in (pki.apiserver_cert_path, pki.admin_cert_path):
        leaf = _cert(path)
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


def test_serving_certificate_names_every_way_clients_reach_the_api_server(pki):
    serving = _cert(pki.apiserver_cert_path)
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {"cp1.example.test", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "localhost"} <= names
    assert {"192.0.2.10", "127.0.0.1", "10.96.0.1"} <= ips
    eku = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_admin_certificate_is_in_system_masters(pki):
    admin = _cert(pki.admin_cert_path)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_key_and_certificate_files_are_private(pki):
    for f in pki.dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(pki.dir.stat().st_mode) == 0o700


def test_second_run_keeps_existing_files(tmp_path, pki):
    before = {f.name: f.read_bytes() for f in pki.dir.iterdir()}
    again = ensure_control_plane_pki(tmp_path, ["cp1.example.test"], ["192.0.2.10"])
    assert {f.name: f.read_bytes() for f in again.dir.iterdir()} == before


def test_new_address_reissues_only_the_serving_certificate(tmp_path, pki):
    ca_before, admin_before = pki.ca_cert_path.read_bytes(), pki.admin_cert_path.read_bytes()
    ensure_control_plane_pki(tmp_path, ["cp1.example.test"], ["192.0.2.10", "192.0.2.11"])
    assert pki.ca_cert_path.read_bytes() == ca_before
    assert pki.admin_cert_path.read_bytes() == admin_before
    san = _cert(pki.apiserver_cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.11") in san.get_values_for_type(x509.IPAddress)


def test_half_a_key_pair_is_an_error_naming_the_file(tmp_path, pki):
    pki.ca_key_path.unlink()
    with pytest.raises(PKIError, match="ca.key"):
        ensure_control_plane_pki(tmp_path, [], [])


def test_bad_ip_is_an_error_naming_it(tmp_path):
    with pytest.raises(PKIError, match="not-an-ip"):
        ensure_control_plane_pki(tmp_path, [], ["not-an-ip"])


def test_issued_client_certificate_names_user_and_groups(pki):
    cert_pem, key_pem = issue_client_cert(pki, "alice", ["dev", "ops"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(_cert(pki.ca_cert_path))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "ops"]
    assert b"PRIVATE KEY" in key_pem


def _handshake(server_ctx, client_ctx) -> tuple[dict | None, Exception | None]:
    """One TLS handshake over loopback; returns the server's view of the client certificate (or the error)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict = {}

    def serve():
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as e:
            seen["error"] = e

    t = threading.Thread(target=serve)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.recv(2)
    except (ssl.SSLError, OSError):
        pass
    t.join(10)
    listener.close()
    return seen.get("peer"), seen.get("error")


def test_server_accepts_clients_without_a_certificate(pki):
    peer, error = _handshake(server_ssl_context(pki), client_ssl_context(pki))
    assert error is None and not peer


def test_server_sees_the_verified_client_certificate(pki):
    peer, error = _handshake(server_ssl_context(pki),
                             client_ssl_context(pki, pki.admin_cert_path, pki.admin_key_path))
    assert error is None
    subject = dict(item[0] for item in peer["subject"])
    assert subject == {"organizationName": "system:masters", "commonName": "kubernetes-admin"}


def test_server_refuses_a_certificate_from_another_ca(tmp_path, pki):
    other = ensure_control_plane_pki(tmp_path / "other", [], [])
    client = client_ssl_context(pki, other.admin_cert_path, other.admin_key_path)
    peer, error = _handshake(server_ssl_context(pki), client)
    assert peer is None and isinstance(error, ssl.SSLError)


def test_kubeconfig_has_the_shape_kubectl_reads(tmp_path, pki):
    path = write_kubeconfig(tmp_path / "k.yaml", "https://127.0.0.1:6443", pki.ca_cert_pem,
                            pki.admin_cert_pem, pki.admin_key_pem, user="kubernetes-admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = yaml.safe_load(path.read_text())
    assert cfg["kind"] == "Config" and cfg["apiVersion"] == "v1"
    ctx = next(c for c in cfg["contexts"] if c["name"] == cfg["current-context"])["context"]
    cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    user = next(u for u in cfg["users"] if u["name"] == ctx["user"])["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert_pem
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin_cert_pem
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key_pem


def test_token_kubeconfig(tmp_path, pki):
    path = write_kubeconfig(tmp_path / "t.yaml", "https://127.0.0.1:6443", pki.ca_cert_pem, token="s3cret", user="bob")
    user = yaml.safe_load(path.read_text())["users"][0]
    assert user == {"name": "bob", "user": {"token": "s3cret"}}


def test_kfab_kubeconfig_command_issues_a_user_certificate(tmp_path, pki, capsys):
    out = tmp_path / "alice.kubeconfig"
    rc = kfab_main(["kubeconfig", "--data-dir", str(tmp_path), "--user", "alice", "--group", "dev",
                    "--server", "https://127.0.0.1:6443", "-o", str(out)])
    assert rc == 0
    cfg = yaml.safe_load(out.read_text())
    cert = x509.load_pem_x509_certificate(base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_kfab_kubeconfig_reads_the_recorded_server_url(tmp_path, pki, capsys):
    write_kubeconfig(tmp_path / "admin.kubeconfig", "https://127.0.0.1:7443", pki.ca_cert_pem,
                     pki.admin_cert_pem, pki.admin_key_pem)
    assert kfab_main(["kubeconfig", "--data-dir", str(tmp_path)]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"
    assert base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"]) == pki.admin_cert_pem


def test_kfab_kubeconfig_without_pki_says_what_is_missing(tmp_path, capsys):
    rc = kfab_main(["kubeconfig", "--data-dir", str(tmp_path), "--server", "https://127.0.0.1:6443"])
    assert rc == 1
    assert "ca.crt" in capsys.readouterr().err


def test_kfab_pki_creates_then_keeps_the_cluster_pki(tmp_path, capsys):
    assert kfab_main(["pki", "--data-dir", str(tmp_path), "--hostname", "cp1.lab", "--ip", "10.0.0.5"]) == 0
    listed = capsys.readouterr().out.split()
    assert str(tmp_path / "pki" / "ca.key") in listed and str(tmp_path / "pki" / "apiserver.crt") in listed
    ca = (tmp_path / "pki" / "ca.crt").read_bytes()
    assert kfab_main(["pki", "--data-dir", str(tmp_path), "--ip", "10.0.0.6"]) == 0
    assert (tmp_path / "pki" / "ca.crt").read_bytes() == ca
    assert kfab_main(["pki", "--data-dir", str(tmp_path), "--ip", "10.0.0.999"]) == 1
    assert "10.0.0.999" in capsys.readouterr().err
