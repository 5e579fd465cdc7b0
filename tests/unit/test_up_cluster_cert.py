"""cluster_cert: certificates from a CA kept on the control machine; the same request again puts the same bytes
(a second `kfab up` is `ok`), private keys never appear in a diff, check mode saves nothing locally."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from kfab.provision.modules.base import Diff, Fail, FileInfo, PutFile, Result
from tests.unit.test_provision_modules import FakeHost, plan

ARGS = dict(name="h1/apiserver", cn="kube-apiserver", dns=["h1", "kubernetes"], ips=["10.0.0.1"],
            cert="/p/apiserver.crt", key="/p/apiserver.key", ca_cert="/p/ca.crt", mode="0600")


def apply(host: FakeHost, changes) -> None:
    for c in changes:
        if isinstance(c, PutFile):
            host.files[c.path] = FileInfo("file", c.mode or "0644", "root", "root", content=c.content)


def test_issues_once_and_a_second_run_changes_nothing(tmp_path: Path):
    host = FakeHost()
    first = plan("cluster_cert", host, pki_dir=str(tmp_path), **ARGS)
    puts = {c.path: c for c in first if isinstance(c, PutFile)}
    assert set(puts) == {"/p/ca.crt", "/p/apiserver.crt", "/p/apiserver.key"}
    assert puts["/p/apiserver.key"].mode == "0600"
    cert = x509.load_pem_x509_certificate(puts["/p/apiserver.crt"].content)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"h1", "kubernetes"}
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    apply(host, first)
    assert plan("cluster_cert", host, pki_dir=str(tmp_path), **ARGS) == []


def test_private_keys_never_reach_a_diff(tmp_path: Path):
    host = FakeHost()
    host.files["/p/apiserver.key"] = FileInfo("file", "0600", "root", "root", content=b"old secret")
    changes = plan("cluster_cert", host, pki_dir=str(tmp_path), **ARGS)
    key_diffs = [c for c in changes if isinstance(c, Diff) and c.path.endswith(".key")]
    assert key_diffs and all("secret" not in d.before + d.after and "PRIVATE" not in d.after for d in key_diffs)


def test_a_changed_request_reissues_with_the_same_ca(tmp_path: Path):
    host = FakeHost()
    apply(host, plan("cluster_cert", host, pki_dir=str(tmp_path), **ARGS))
    ca_before = host.files["/p/ca.crt"].content
    changes = plan("cluster_cert", host, pki_dir=str(tmp_path), **(ARGS | {"ips": ["10.0.0.2"]}))
    assert {c.path for c in changes if isinstance(c, PutFile)} == {"/p/apiserver.crt", "/p/apiserver.key"}
    assert host.files["/p/ca.crt"].content == ca_before


def test_check_mode_saves_nothing_on_the_control_machine(tmp_path: Path):
    host = FakeHost(check=True)
    changes = plan("cluster_cert", host, pki_dir=str(tmp_path / "pki"), local_kubeconfig=str(tmp_path / "kc"),
                   server="https://10.0.0.1:6443", **ARGS)
    assert any(isinstance(c, PutFile) for c in changes)
    assert not (tmp_path / "pki" / "ca.key").exists() and not (tmp_path / "kc").exists()


def test_local_admin_kubeconfig(tmp_path: Path):
    changes = plan("cluster_cert", FakeHost(), pki_dir=str(tmp_path / "pki"), name="admin", cn="kubernetes-admin",
                   groups=["system:masters"], client=True, server="https://10.0.0.1:6443",
                   local_kubeconfig=str(tmp_path / "admin.kubeconfig"))
    local = tmp_path / "admin.kubeconfig"
    assert changes == [Result({"local_kubeconfig": str(local),
                               "next_steps": [f"Admin kubeconfig: {local}",
                                              f"Next: kubectl --kubeconfig {local} get nodes -o wide"]})]
    text = (tmp_path / "admin.kubeconfig").read_text()
    assert "server: https://10.0.0.1:6443" in text
    assert (tmp_path / "admin.kubeconfig").stat().st_mode & 0o777 == 0o600


def test_bad_arguments_are_named(tmp_path: Path):
    assert plan("cluster_cert", FakeHost(), pki_dir=str(tmp_path), name="../x", cn="a", client=True) == [
        Fail("name must be a relative path such as 'kt1/apiserver', got '../x'")]
    out = plan("cluster_cert", FakeHost(), pki_dir=str(tmp_path), name="x", cn="a")
    assert isinstance(out[0], Fail) and "dns/ips" in out[0].message


def test_every_control_plane_host_gets_the_one_encryption_config_never_in_a_diff(tmp_path: Path):
    configs = []
    for name in ("h1", "h2"):
        host = FakeHost()
        changes = plan("cluster_cert", host, pki_dir=str(tmp_path), encryption_config="/p/encryption-config.yaml",
                       **(ARGS | {"name": f"{name}/apiserver"}))
        put = next(c for c in changes if isinstance(c, PutFile) and c.path == "/p/encryption-config.yaml")
        diff = next(c for c in changes if isinstance(c, Diff) and c.path == "/p/encryption-config.yaml")
        assert put.mode == "0600" and b"kind: EncryptionConfiguration" in put.content
        assert "aesgcm" not in diff.after and "secret" not in diff.after.replace("not shown", "")
        configs.append(put.content)
    assert configs[0] == configs[1], "HA API servers must share their keys"
    assert (tmp_path / "encryption-config.yaml").stat().st_mode & 0o777 == 0o600


def test_every_control_plane_host_gets_the_one_service_account_key(tmp_path: Path):
    """HA API servers verify each other's ServiceAccount tokens: they must sign with the same key."""
    keys = []
    for name in ("h1", "h2"):
        host = FakeHost()
        changes = plan("cluster_cert", host, pki_dir=str(tmp_path), **(ARGS | {"name": f"{name}/apiserver",
                                                                              "sa_key": "/p/sa.key"}))
        put = next(c for c in changes if isinstance(c, PutFile) and c.path == "/p/sa.key")
        assert put.mode == "0600"
        assert not any(isinstance(c, Diff) and "PRIVATE" in c.after for c in changes)
        keys.append(put.content)
    assert keys[0] == keys[1] == (tmp_path / "sa.key").read_bytes()
    assert b"PRIVATE KEY" in keys[0]
