"""Role pki on the scenario's hosts (testinfra over SSH, hosts from the scenario's inventory): the control
plane holds the CA and its serving/admin pairs, a worker only its own identities, keys 0600."""

from pathlib import Path

import pytest
import yaml

INVENTORY = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["children"]
testinfra_hosts = ["ansible://control_plane", "ansible://workers"]

PKI = "/var/lib/kfab/pki"
CONFIG = "/etc/kfab"


def _address(group: str, name: str) -> str:
    return INVENTORY[group]["hosts"][name]["ansible_host"]


def _in_group(host, group: str) -> str:
    """The host's inventory name; the test is skipped on hosts outside `group`."""
    name = host.ansible.get_variables()["inventory_hostname"]
    if name not in INVENTORY[group]["hosts"]:
        pytest.skip(f"a {group} host's files")
    return name


@pytest.fixture
def control_plane(host) -> str:
    return _in_group(host, "control_plane")


@pytest.fixture
def worker(host) -> str:
    return _in_group(host, "workers")


def _certificate_text(host, cert: str) -> str:
    return host.check_output(f"openssl x509 -in {cert} -noout -subject -ext subjectAltName")


def test_control_plane_ca_and_keys_are_private(host, control_plane):
    for directory in ("/var/lib/kfab", PKI, CONFIG):
        assert host.file(directory).mode == 0o700, directory
    for secret in ("ca.key", "apiserver.key", "admin.key", "sa.key", "encryption-config.yaml"):
        f = host.file(f"{PKI}/{secret}")
        assert f.is_file and f.mode == 0o600 and f.user == "root", secret


def test_apiserver_certificate_is_the_cas_and_names_the_api(host, control_plane):
    host.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/apiserver.crt")
    text = _certificate_text(host, f"{PKI}/apiserver.crt")
    for name in ("CN = kube-apiserver", "DNS:kubernetes.default.svc.cluster.local", f"DNS:{control_plane}",
                 "IP Address:10.96.0.1", f"IP Address:{_address('control_plane', control_plane)}"):
        assert name in text, (name, text)


def test_admin_is_system_masters(host, control_plane):
    host.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/admin.crt")
    subject = host.check_output(f"openssl x509 -in {PKI}/admin.crt -noout -subject")
    assert "O = system:masters" in subject and "CN = kubernetes-admin" in subject, subject


def test_worker_has_its_own_identities_only(host, worker):
    host.run_expect([0], f"openssl verify -CAfile {CONFIG}/ca.crt {CONFIG}/node.crt")
    text = _certificate_text(host, f"{CONFIG}/node.crt")
    assert f"CN = system:node:{worker}" in text and "O = system:nodes" in text, text
    assert f"IP Address:{_address('workers', worker)}" in text, text
    for private in ("node.key", "node.kubeconfig", "proxy.kubeconfig", "dns.kubeconfig", "ingress.kubeconfig"):
        f = host.file(f"{CONFIG}/{private}")
        assert f.is_file and f.mode == 0o600, private
    # Never the CA's key nor another part's: the only private key on a worker is its own serving key.
    assert not host.file(PKI).exists
    keys = host.check_output(f"grep -rl 'PRIVATE KEY' {CONFIG} || true").split()
    assert keys == [f"{CONFIG}/node.key"], keys


def test_worker_kubeconfigs_point_at_the_control_plane(host, worker):
    first = next(iter(INVENTORY["control_plane"]["hosts"]))
    for kubeconfig in ("node", "proxy", "dns", "ingress"):
        text = host.file(f"{CONFIG}/{kubeconfig}.kubeconfig").content_string
        assert f"server: https://{_address('control_plane', first)}:6443" in text, kubeconfig
