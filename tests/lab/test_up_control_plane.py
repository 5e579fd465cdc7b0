"""`kfab up` installs the control plane (pki, state store, API server, controllers, scheduler) and the image
registry on bare lab hosts (u1 = control plane + registry, u2/u3 workers), and kubectl on this machine drives it.

The hosts are the session's `site` (tests/lab/site_cluster.py, tests/lab/inventory/up.yml): installed once by
`kfab up`, shared with the whole-site tests (test_up_site.py)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.lab.site_cluster import KFAB, REPO, recap


# The first test of the session sets up the `site` (bare hosts -> `kfab up`): minutes on a busy machine.
pytestmark = pytest.mark.timeout(2400)


def test_kubectl_reaches_the_api_server_on_u1_over_the_lab_network(site):
    proc = site.kubectl("get", "ns", "-o", "json")
    names = {ns["metadata"]["name"] for ns in json.loads(proc.stdout)["items"]}
    assert {"default", "kube-system"} <= names
    server = site.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server == f"https://{site.lab.hosts['u1']}:6443"


def test_control_plane_runs_as_systemd_services_with_private_keys_kept_private(site):
    for unit in ("kfab-apiserver", "kfab-controller-manager", "kfab-scheduler", "docker-registry"):
        assert site.ssh("u1", f"systemctl is-active {unit}").stdout.strip() == "active"
    modes = site.ssh("u1", "stat -c '%a %n' /var/lib/kfab/pki/*.key /etc/kfab/*.kubeconfig").stdout.split("\n")
    assert all(line.startswith("600 ") for line in modes if line), modes
    # workers get no control-plane credentials
    assert site.ssh("u2", "ls /var/lib/kfab/pki", check=False).returncode != 0


def test_controllers_act_on_the_installed_cluster(site):
    # A Deployment gets its ReplicaSet only if the controller-manager (its own unit) runs and is authorized.
    name = "up-test-deploy"
    site.kubectl("delete", "deployment", name, "--ignore-not-found", "--wait=true")
    site.kubectl("create", "deployment", name, "--image=u1:5000/none:1")
    try:
        site.kubectl("wait", f"deployment/{name}", "--for=jsonpath={.status.replicas}=1", "--timeout=60s")
    finally:
        site.kubectl("delete", "deployment", name, "--ignore-not-found", check=False)


def test_second_up_changes_nothing(site):
    proc = site.kfab("up", "-i", str(site.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = recap(proc.stdout)
    assert set(table) == {"u1", "u2", "u3"}
    assert {h: row["changed"] for h, row in table.items()} == {"u1": 0, "u2": 0, "u3": 0}, proc.stdout


def test_plan_shows_exactly_a_manual_change_and_up_undoes_it(site):
    changed = site.plan_after_hand_edit("u2", "/etc/containers/registries.conf.d/kfab-registry.conf")
    assert changed == {"u1": 0, "u2": 1, "u3": 0}


def test_plan_never_shows_private_keys(site):
    site.ssh("u1", "cp /var/lib/kfab/pki/apiserver.key /root/apiserver.key.bak && "
                   "echo tampered > /var/lib/kfab/pki/apiserver.key")
    try:
        proc = site.kfab("plan", "-i", str(site.inventory), "--limit", "u1")
        assert "/var/lib/kfab/pki/apiserver.key" in proc.stdout
        assert "tampered" not in proc.stdout and "PRIVATE KEY" not in proc.stdout
        assert "<private key, not shown>" in proc.stdout
    finally:
        site.ssh("u1", "cp /root/apiserver.key.bak /var/lib/kfab/pki/apiserver.key && chmod 600 "
                       "/var/lib/kfab/pki/apiserver.key && rm /root/apiserver.key.bak")


def test_image_push_then_a_worker_pulls_and_runs_it(site):
    from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
    with tempfile.TemporaryDirectory(prefix="kfab-up-image-") as tmp:
        build_busybox_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), BUSYBOX_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    assert name == "u1:5000/kfab-busybox:1"
    out = site.ssh("u2", f"podman pull -q {name} >/dev/null && podman run --rm {name} echo pulled-from-registry")
    assert out.stdout.strip() == "pulled-from-registry"
    site.ssh("u2", f"podman rmi -f {name}", check=False)


def test_image_push_names_a_missing_registry_group(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        a:\n")
    proc = subprocess.run(KFAB + ["image", "push", "-i", str(inv), "localhost/x:1"], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=REPO)
    assert proc.returncode == 1
    assert "group 'registry'" in proc.stderr and str(inv) in proc.stderr
