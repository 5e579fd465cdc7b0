"""Role storage-provisioner on the scenario's storage host (testinfra over SSH): `kfab provisioner nfs` and
`kfab provisioner iscsi` run as units with their own credentials and settings (mode 0600: the iSCSI ones hold
the CHAP secret); they made the StorageClasses kfab-nfs (the default) and kfab-iscsi, as the cluster admin sees
them with kubectl from here; and a claim of each class is Bound to a volume made on this host — an exported
directory, a tgt target on a LUN file — which goes with the claim when it is deleted (reclaim policy Delete)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

LAB = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
STORAGE_HOST = next(iter(LAB["children"]["nfs_server"]["hosts"]))
STORAGE = LAB["children"]["nfs_server"]["hosts"][STORAGE_HOST]["ansible_host"]
KUBECONFIG = Path(f"~/.local/share/kfab/clusters/{LAB['vars']['kfab_lab_network']}/admin.kubeconfig").expanduser()
IQN_BASE = "iqn.2024-01.io.kfab"   # role iscsi-target's iscsi_target_iqn_base

testinfra_hosts = [f"ansible://{STORAGE_HOST}"]


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args],
                         input=stdin, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 or not check, (args, out.stderr)
    return out


def get(*args: str) -> dict | None:
    out = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def wait_for(what: str, condition, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)
    return result


def claim(name: str, cls: str, size: str) -> dict:
    """Create a claim of class `cls`; returns its volume once the claim is Bound."""
    kubectl("delete", "pvc", name, "--ignore-not-found", "--wait")
    kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"storageClassName": cls, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": size}}}}))
    pvc = wait_for(f"claim {name} Bound", lambda: (p := get("pvc", name)) and p["status"].get("phase") == "Bound" and p)
    return get("pv", pvc["spec"]["volumeName"])


def test_provisioners_run_with_their_own_credentials(host):
    for kind in ("nfs", "iscsi"):
        service = host.service(f"kfab-provisioner-{kind}")
        assert service.is_running and service.is_enabled, kind
        for path in (f"/etc/kfab/provisioner-{kind}.kubeconfig", f"/etc/kfab/provisioner-{kind}.yml"):
            assert host.file(path).mode == 0o600, path
        # Its own user (CN system:kfab-provisioner:<host>, O system:kfab-provisioners), never an admin's.
        subject = host.check_output(f"awk '/client-certificate-data:/ {{print $2}}' /etc/kfab/provisioner-{kind}"
                                    ".kubeconfig | base64 -d | openssl x509 -noout -subject -nameopt RFC2253")
        assert sorted(subject.removeprefix("subject=").split(",")) == [
            f"CN=system:kfab-provisioner:{STORAGE_HOST}", "O=system:kfab-provisioners"], subject


def test_storage_classes():
    classes = {sc["metadata"]["name"]: sc for sc in get("storageclass")["items"]}
    nfs, iscsi = classes["kfab-nfs"], classes["kfab-iscsi"]
    assert (nfs["provisioner"], nfs["reclaimPolicy"]) == ("kfab.io/nfs", "Delete")
    assert (iscsi["provisioner"], iscsi["reclaimPolicy"]) == ("kfab.io/iscsi", "Delete")
    default = "storageclass.kubernetes.io/is-default-class"
    assert nfs["metadata"].get("annotations", {}).get(default) == "true"   # the role's storage_default_class
    assert iscsi["metadata"].get("annotations", {}).get(default) != "true"


def test_nfs_claim_gets_an_exported_directory_that_goes_with_it(host):
    pv = claim("molecule-nfs", "kfab-nfs", "10Mi")
    name, source = pv["metadata"]["name"], pv["spec"]["nfs"]
    directory = f"/srv/kfab-nfs/dynamic/default-molecule-nfs-{name}"
    assert source == {"server": STORAGE, "path": directory}, source
    assert host.file(directory).is_directory
    kubectl("delete", "pvc", "molecule-nfs")
    wait_for("the volume deleted", lambda: get("pv", name) is None)
    assert not host.file(directory).exists


def test_iscsi_claim_gets_a_target_that_goes_with_it(host):
    pv = claim("molecule-iscsi", "kfab-iscsi", "16Mi")
    name, source = pv["metadata"]["name"], pv["spec"]["iscsi"]
    iqn = f"{IQN_BASE}:{name}"
    assert (source["targetPortal"], source["iqn"], source["lun"]) == (f"{STORAGE}:3260", iqn, 1), source
    assert iqn in host.check_output("tgtadm --lld iscsi --mode target --op show")
    lun = host.file(f"/srv/kfab-iscsi/{name}.img")
    assert lun.is_file and lun.size == 16 * 1024 * 1024
    kubectl("delete", "pvc", "molecule-iscsi")
    wait_for("the volume deleted", lambda: get("pv", name) is None)
    assert iqn not in host.check_output("tgtadm --lld iscsi --mode target --op show")
    assert not host.file(f"/srv/kfab-iscsi/{name}.img").exists
