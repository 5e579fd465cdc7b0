"""Role control-plane on the scenario's host (testinfra over SSH): the API server, controller-manager and
scheduler run as units; the API is ready; the controllers work (the default ServiceAccount is made); the admin
kubeconfig the role writes on this machine reaches the API with kubectl."""

import subprocess
import sys
from pathlib import Path

import yaml

LAB = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["vars"]
testinfra_hosts = ["ansible://control_plane"]
PKI = "/var/lib/kfab/pki"


def _api(host, path: str) -> str:
    return host.check_output(f"curl -sS --fail --cacert {PKI}/ca.crt --cert {PKI}/admin.crt --key {PKI}/admin.key "
                             f"https://127.0.0.1:6443{path}")


def test_units_run(host):
    for unit in ("kfab-apiserver", "kfab-controller-manager", "kfab-scheduler"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit


def test_api_is_ready_and_controllers_work(host):
    assert _api(host, "/readyz") == "ok"
    assert '"name":"default"' in _api(host, "/api/v1/namespaces/default/serviceaccounts/default").replace(" ", "")


def test_admin_kubeconfig_on_this_machine():
    kubeconfig = Path(f"~/.local/share/kfab/clusters/{LAB['kfab_lab_network']}/admin.kubeconfig").expanduser()
    kubectl = Path(sys.executable).parent / "kubectl"
    out = subprocess.run([str(kubectl), "--kubeconfig", str(kubeconfig), "get", "namespaces", "-o", "name"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "namespace/kube-system" in out.stdout, out.stdout + out.stderr
