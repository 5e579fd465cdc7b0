"""`kfab up` installs the control plane (pki, state store, API server, controllers, scheduler) and the image
registry on bare lab hosts (u1 = control plane + registry, u2/u3 workers), and kubectl on this machine drives it.

The hosts are a lab of their own (tests/lab/inventory/up.yml), up for this module and down after it: the session
lab (kt1..kt3) is restarted and re-provisioned by other tests while these run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "up.yml"
# role pki's default: the CA and the admin kubeconfig live here, per lab network (kfab_lab_network)
CLUSTER_DIR = Path("~/.local/share/kfab/clusters/kfabup").expanduser()


def kfab(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    if args[0] in ("up", "plan"):
        # One wheelhouse for the whole module: others edit the shared tree meanwhile, and a rebuilt kfab would
        # rightly count as a change on the hosts.
        from kfab.ship.wheelhouse import build
        args = (*args, "-e", f"kfab_wheelhouse={_wheelhouse.setdefault('dir', build())}")
    return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=REPO)


_wheelhouse: dict = {}


def recap(output: str) -> dict[str, dict[str, int]]:
    """The RECAP table of a run: host -> {ok, changed, failed, unreachable, skipped}."""
    rows = output.split("\nRECAP\n", 1)[1].splitlines()
    columns = [c.lower() for c in rows[0].split()[1:]]
    return {cells[0]: dict(zip(columns, map(int, cells[1:]))) for cells in (r.split() for r in rows[1:] if r.strip())}


@pytest.fixture(scope="module")
def lab():
    from kfab.lab import Lab
    from tests.lab.conftest import LabHosts
    hosts = Lab(INVENTORY)
    hosts.down()
    hosts.up()
    try:
        yield LabHosts(hosts)
    finally:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            hosts.down()


@pytest.fixture(scope="module")
def control_plane(lab):
    proc = kfab("up", "-i", str(lab.inventory))
    assert proc.returncode == 0, f"kfab up failed:\n{proc.stdout}{proc.stderr}"
    return CLUSTER_DIR / "admin.kubeconfig"


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    return subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=60)


def test_kubectl_reaches_the_api_server_on_u1_over_the_lab_network(lab, control_plane):
    proc = kubectl(control_plane, "get", "ns", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    names = {ns["metadata"]["name"] for ns in json.loads(proc.stdout)["items"]}
    assert {"default", "kube-system"} <= names
    server = kubectl(control_plane, "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server == f"https://{lab.hosts['u1']}:6443"


def test_control_plane_runs_as_systemd_services_with_private_keys_kept_private(lab, control_plane):
    for unit in ("kfab-apiserver", "kfab-controller-manager", "kfab-scheduler", "docker-registry"):
        assert lab.ssh("u1", f"systemctl is-active {unit}").stdout.strip() == "active"
    modes = lab.ssh("u1", "stat -c '%a %n' /var/lib/kfab/pki/*.key /etc/kfab/*.kubeconfig").stdout.split("\n")
    assert all(line.startswith("600 ") for line in modes if line), modes
    # workers get no control-plane credentials
    assert lab.ssh("u2", "ls /var/lib/kfab/pki", check=False).returncode != 0


def test_controllers_act_on_the_installed_cluster(control_plane):
    # A Deployment gets its ReplicaSet only if the controller-manager (its own unit) runs and is authorized.
    name = "up-test-deploy"
    kubectl(control_plane, "delete", "deployment", name, "--ignore-not-found", "--wait=true")
    proc = kubectl(control_plane, "create", "deployment", name, "--image=u1:5000/none:1")
    assert proc.returncode == 0, proc.stderr
    try:
        proc = kubectl(control_plane, "wait", f"deployment/{name}", "--for=jsonpath={.status.replicas}=1",
                       "--timeout=60s")
        assert proc.returncode == 0, proc.stderr
    finally:
        kubectl(control_plane, "delete", "deployment", name, "--ignore-not-found")


def test_second_up_changes_nothing(lab, control_plane):
    proc = kfab("up", "-i", str(lab.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = recap(proc.stdout)
    assert set(table) == {"u1", "u2", "u3"}
    assert {h: row["changed"] for h, row in table.items()} == {"u1": 0, "u2": 0, "u3": 0}, proc.stdout


def test_plan_shows_exactly_a_manual_change_and_up_undoes_it(lab, control_plane):
    path = "/etc/containers/registries.conf.d/kfab-registry.conf"
    lab.ssh("u2", f"echo '# edited by hand' >> {path}")
    try:
        proc = kfab("plan", "-i", str(lab.inventory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        table = recap(proc.stdout)
        assert {h: row["changed"] for h, row in table.items()} == {"u1": 0, "u2": 1, "u3": 0}, proc.stdout
        assert "-# edited by hand" in proc.stdout
        assert path in proc.stdout
        # plan changed nothing
        assert "# edited by hand" in lab.ssh("u2", f"cat {path}").stdout
    finally:
        proc = kfab("up", "-i", str(lab.inventory), "--limit", "u2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# edited by hand" not in lab.ssh("u2", f"cat {path}").stdout


def test_plan_never_shows_private_keys(lab, control_plane):
    lab.ssh("u1", "cp /var/lib/kfab/pki/apiserver.key /root/apiserver.key.bak && "
                   "echo tampered > /var/lib/kfab/pki/apiserver.key")
    try:
        proc = kfab("plan", "-i", str(lab.inventory), "--limit", "u1")
        assert "/var/lib/kfab/pki/apiserver.key" in proc.stdout
        assert "tampered" not in proc.stdout and "PRIVATE KEY" not in proc.stdout
        assert "<private key, not shown>" in proc.stdout
    finally:
        lab.ssh("u1", "cp /root/apiserver.key.bak /var/lib/kfab/pki/apiserver.key && chmod 600 "
                       "/var/lib/kfab/pki/apiserver.key && rm /root/apiserver.key.bak")


def test_image_push_then_a_worker_pulls_and_runs_it(lab, control_plane):
    from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
    with tempfile.TemporaryDirectory(prefix="kfab-up-image-") as tmp:
        build_busybox_image(Path(tmp))
    proc = kfab("image", "push", "-i", str(lab.inventory), BUSYBOX_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    assert name == "u1:5000/kfab-busybox:1"
    out = lab.ssh("u2", f"podman pull -q {name} >/dev/null && podman run --rm {name} echo pulled-from-registry")
    assert out.stdout.strip() == "pulled-from-registry"
    lab.ssh("u2", f"podman rmi -f {name}", check=False)


def test_image_push_names_a_missing_registry_group(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        a:\n")
    proc = kfab("image", "push", "-i", str(inv), "localhost/x:1")
    assert proc.returncode == 1
    assert "group 'registry'" in proc.stderr and str(inv) in proc.stderr
