"""The storage servers and their provisioners on a lab of their own (tests/lab/inventory/storage-servers.yml,
10.95): ss1 gets roles nfs-server (nfs-ganesha: a container host), iscsi-target (tgt) and storage-provisioner
twice (`kfab provisioner nfs|iscsi` as units) from `kfab up`, against a `kfab server` on this machine bound to
the lab gateway; ss2 is a node's address, checked with the userspace clients (libnfs-utils, libiscsi-bin), and
this machine (the gateway, no node) must be refused: its kernel can neither mount NFS nor log in to iSCSI
(node-side mounts are tests/lab/test_storage.py).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.lab.conftest import fresh_lab
from tests.lab.node_cluster import KFAB, REPO, NodeCluster
from tests.waiting import wait_until

INVENTORY = Path(__file__).parent / "inventory" / "storage-servers.yml"
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "storage-servers.yml"
SERVER, CLIENT = "ss1", "ss2"
SERVER_IP = "10.95.0.11"
CHAP_USER, CHAP_PASSWORD = "kfabtest", "lab-chap-secret1"   # the inventory's
IQN_BASE = "iqn.2024-01.io.kfab"
CLIENT_TOOLS = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnfs-utils libiscsi-bin >/dev/null 2>&1 || "
                "(apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnfs-utils "
                "libiscsi-bin)")
# Package installs on lab hosts (nfs-ganesha pulls in dbus, krb5, ...) dominate; the module's setup may take
# longer than one test's default limit on a busy machine.


@pytest.fixture(scope="module")
def storage_lab():
    yield from fresh_lab(INVENTORY)


def kfab_up(cluster: NodeCluster, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(KFAB + ["up", "-i", str(INVENTORY), str(PLAYBOOK),
                                  "-e", f"storage_provisioner_kubeconfig={cluster.workdir / 'provisioner.kubeconfig'}",
                                  "-e", f"kfab_wheelhouse={cluster.wheelhouse}", *extra],
                          capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL, cwd=REPO)


@pytest.fixture(scope="module")
def cluster(storage_lab):
    """`kfab server` here; the roles on ss1 with the provisioner's own identity; client tools on both hosts."""
    c = NodeCluster(storage_lab, [])
    try:
        c._start_server()
        subprocess.run(KFAB + ["kubeconfig", "--data-dir", str(c.data_dir), "--user", "system:kfab-provisioner:ss1",
                               "--group", "system:kfab-provisioners", "--server", c.server_url,
                               "-o", str(c.workdir / "provisioner.kubeconfig")], check=True, capture_output=True)
        from kfab.install.wheelhouse import build
        c.wheelhouse = build()
        # The client's tools install meanwhile: kfab up works on ss1 only.
        tools = subprocess.Popen(storage_lab.lab.ssh_command(CLIENT) + [CLIENT_TOOLS], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        first_up = kfab_up(c)
        assert tools.wait(600) == 0, f"installing the client tools on {CLIENT} failed:\n{tools.stdout.read()}"
        assert first_up.returncode == 0, f"kfab up failed:\n{first_up.stdout}{first_up.stderr}"
        wait_until("StorageClasses kfab-nfs and kfab-iscsi",
                   lambda: {"kfab-nfs", "kfab-iscsi"} <= {
sc["metadata"]["name"] for sc in json.loads(c.kubectl("get", "sc", "-o", "json").stdout)["items"]},
                   60, 0.2, retry_on=(Exception,))
        yield c
    finally:
        c.stop()


def claim(name: str, cls: str, size: str, modes=("ReadWriteOnce",)) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                       "spec": {"storageClassName": cls, "accessModes": list(modes),
                                "resources": {"requests": {"storage": size}}}})


def bound_volume(cluster: NodeCluster, name: str) -> dict:
    pvc = wait_until(f"claim {name} Bound",
                     lambda: (lambda p: p if p["status"].get("phase") == "Bound" else None)(
cluster.get("pvc", name)), 60, 0.2, retry_on=(Exception,))
    return cluster.get("pv", pvc["spec"]["volumeName"], "")


def gone(cluster: NodeCluster, kind: str, name: str, namespace: str = "") -> bool:
    args = ["get", kind, name] + (["-n", namespace] if namespace else [])
    return cluster.kubectl(*args, check=False).returncode != 0


def here(*argv: str) -> subprocess.CompletedProcess:
    """A libnfs/libiscsi client on this machine: the lab gateway's address, which is not a node's."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def lun_size(storage_lab, iqn: str) -> int:
    """LUN 1's size in bytes as a node sees it (iscsi-readcapacity16 from ss2, logged in with CHAP)."""
    return int(storage_lab.ssh(CLIENT, f"iscsi-readcapacity16 -s {iscsi_url(iqn)}").stdout.strip())


def iscsi_url(iqn: str, user: str = CHAP_USER, password: str = CHAP_PASSWORD) -> str:
    return f"iscsi://{user}%{password}@{SERVER_IP}/{iqn}/1"


# --- the servers --------------------------------------------------------------------------------------------

def test_nfs_export_serves_the_nodes_only(storage_lab, cluster):
    storage_lab.ssh(SERVER, "echo static-data > /srv/kfab-nfs/static/hello.txt")
    listed = storage_lab.ssh(CLIENT, f"nfs-ls nfs://{SERVER_IP}/srv/kfab-nfs/static").stdout
    assert "hello.txt" in listed
    assert storage_lab.ssh(CLIENT, f"nfs-cat nfs://{SERVER_IP}/srv/kfab-nfs/static/hello.txt").stdout == "static-data\n"
    # This machine (the lab gateway) is not a node: the export refuses it.
    refused = here("nfs-ls", f"nfs://{SERVER_IP}/srv/kfab-nfs/static")
    assert refused.returncode != 0 and "hello.txt" not in refused.stdout


def test_iscsi_target_wants_chap_and_a_node_address(storage_lab, cluster):
    iqn = f"{IQN_BASE}:static1"
    assert lun_size(storage_lab, iqn) == 16 * 1024 * 1024
    assert iqn in storage_lab.ssh(CLIENT, f"iscsi-ls iscsi://{CHAP_USER}%{CHAP_PASSWORD}@{SERVER_IP}").stdout
    wrong = storage_lab.ssh(CLIENT, f"iscsi-readcapacity16 -s {iscsi_url(iqn, password='wrong-secret-12')}",
                            check=False)
    assert wrong.returncode != 0 and not wrong.stdout.strip().isdigit()
    # From an address outside the ACL (this machine): discovery shows no target, a login is refused.
    assert iqn not in here("iscsi-ls", f"iscsi://{CHAP_USER}%{CHAP_PASSWORD}@{SERVER_IP}").stdout
    outsider = here("iscsi-readcapacity16", "-s", iscsi_url(iqn))
    assert outsider.returncode != 0 and not outsider.stdout.strip().isdigit()


# --- dynamic provisioning -----------------------------------------------------------------------------------

def test_nfs_claim_gets_a_directory_and_delete_removes_it(storage_lab, cluster):
    cluster.kubectl("apply", "-f", "-", input=claim("web-data", "kfab-nfs", "1Gi", ["ReadWriteMany"]))
    pv = bound_volume(cluster, "web-data")
    spec = pv["spec"]
    directory = f"/srv/kfab-nfs/dynamic/default-web-data-{pv['metadata']['name']}"
    assert spec["nfs"] == {"server": SERVER_IP, "path": directory}
    assert (spec["accessModes"], spec["capacity"], spec["persistentVolumeReclaimPolicy"]) == (
        ["ReadWriteMany"], {"storage": "1Gi"}, "Delete")
    assert spec["claimRef"]["name"] == "web-data"
    storage_lab.ssh(SERVER, f"test -d {directory} && echo kept > {directory}/f")
    assert storage_lab.ssh(CLIENT, f"nfs-cat nfs://{SERVER_IP}{directory}/f").stdout == "kept\n"
    cluster.kubectl("delete", "pvc", "web-data")
    wait_until("the volume deleted",
               lambda: gone(cluster, "pv", pv["metadata"]["name"]), 60, 0.2, retry_on=(Exception,))
    assert storage_lab.ssh(SERVER, f"test -e {directory}", check=False).returncode != 0


def test_retain_keeps_the_directory_and_the_volume(storage_lab, cluster):
    cls = f"nfs-retain-{secrets.token_hex(3)}"
    cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
                   "provisioner": "kfab.io/nfs", "reclaimPolicy": "Retain"})
    cluster.kubectl("apply", "-f", "-", input=claim("keep", cls, "10Mi"))
    pv = bound_volume(cluster, "keep")
    name, directory = pv["metadata"]["name"], pv["spec"]["nfs"]["path"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    cluster.kubectl("delete", "pvc", "keep")
    wait_until("the volume Released",
               lambda: cluster.get("pv", name, "")["status"].get("phase") == "Released", 60, 0.2, retry_on=(Exception,))
    assert storage_lab.ssh(SERVER, f"test -d {directory}", check=False).returncode == 0
    cluster.kubectl("delete", "pv", name)
    cluster.kubectl("delete", "sc", cls)
    storage_lab.ssh(SERVER, f"rm -rf {directory}")


def test_iscsi_claim_gets_a_lun_of_its_size_and_delete_removes_it(storage_lab, cluster):
    cluster.kubectl("apply", "-f", "-", input=claim("db-data", "kfab-iscsi", "100M"))
    pv = bound_volume(cluster, "db-data")
    name, source = pv["metadata"]["name"], pv["spec"]["iscsi"]
    iqn = f"{IQN_BASE}:{name}"
    assert source == {"targetPortal": f"{SERVER_IP}:3260", "iqn": iqn, "lun": 1, "fsType": "ext4",
                      "readOnly": False, "chapAuthDiscovery": False, "chapAuthSession": True,
                      "secretRef": {"name": "kfab-iscsi-chap", "namespace": "default"}}
    assert pv["spec"]["capacity"] == {"storage": "96Mi"}   # 100M rounded up to whole MiB
    secret = cluster.get("secret", "kfab-iscsi-chap")
    assert secret["type"] == "kubernetes.io/iscsi-chap"
    assert secret["data"]["node.session.auth.password"] == "bGFiLWNoYXAtc2VjcmV0MQ=="   # the inventory's
    assert lun_size(storage_lab, iqn) == 96 * 1024 * 1024
    # Expansion: the class allows it; the LUN grows while no node is logged in.
    cluster.kubectl("patch", "pvc", "db-data", "-p", '{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}')
    wait_until("the volume grown",
               lambda: cluster.get("pv", name, "")["spec"]["capacity"]["storage"] == "128Mi",
               60, 0.2, retry_on=(Exception,))
    assert lun_size(storage_lab, iqn) == 128 * 1024 * 1024
    cluster.kubectl("delete", "pvc", "db-data")
    wait_until("the volume deleted", lambda: gone(cluster, "pv", name), 60, 0.2, retry_on=(Exception,))
    assert iqn not in storage_lab.ssh(SERVER, "tgtadm --lld iscsi --mode target --op show").stdout
    assert storage_lab.ssh(SERVER, f"ls /srv/kfab-iscsi/{name}.img /etc/tgt/conf.d/kfab-{name}.conf",
                           check=False).returncode != 0


def test_iscsi_refuses_shared_access_with_an_event(storage_lab, cluster):
    cluster.kubectl("apply", "-f", "-", input=claim("shared", "kfab-iscsi", "10Mi", ["ReadWriteMany"]))
    try:
        def refused():
            events = json.loads(cluster.kubectl("get", "events", "--field-selector",
                                                "involvedObject.name=shared", "-o", "json").stdout)["items"]
            return [e["message"] for e in events if e["reason"] == "ProvisioningFailed"]
        messages = wait_until("a ProvisioningFailed event", refused, 60, 0.2, retry_on=(Exception,))
        assert "kfab.io/iscsi does not support access mode ReadWriteMany" in messages[0]
        assert cluster.get("pvc", "shared")["status"]["phase"] == "Pending"
    finally:
        cluster.kubectl("delete", "pvc", "shared")


def test_rerun_changes_nothing(cluster):
    rerun = kfab_up(cluster)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    recap = re.search(rf"^{SERVER}\s+(\d+)\s+(\d+)\s+(\d+)", rerun.stdout, re.M)
    assert recap and recap.group(2) == "0" and recap.group(3) == "0", rerun.stdout
