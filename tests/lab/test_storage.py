"""Storage end to end on the storage lab (tests/lab/inventory/storage.yml): NFS and iSCSI volumes really mounted
into pods by `kfab node` on the QEMU VM workers st3/st4, provisioned by `kfab provisioner nfs|iscsi` on st1.

Only the VMs have a kernel that mounts NFS and logs in to iSCSI (shared LAB.md), so storage pods carry the node
selector kfab.io/storage-mounts=true, which the fixture puts on st3 and st4; the container worker st2 is where
a pod is sent on purpose to meet a volume attached elsewhere. One `kfab up` for the module; the lab goes down
at the end (KFAB_LAB_KEEP=1 keeps it; KFAB_STORAGE_REUSE=1 runs against a storage lab already up and
installed, e.g. kept from an earlier run).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.lab.storage_site import NS, SLEEP, VMS, StorageSite, claim, pod, pod_spec
from tests.waiting import wait_until

POD_START = 240  # a pod under TCG emulation: sandbox, NFS mount or iSCSI login + mkfs, container (~10-40 s)


@pytest.fixture(scope="module")
def site():
    s = StorageSite().start(reuse=os.environ.get("KFAB_STORAGE_REUSE") == "1")
    try:
        yield s
    finally:
        s.stop()


def running(site: StorageSite, name: str) -> dict | None:
    return site.running(name)


def waiting_reason(site: StorageSite, name: str) -> str | None:
    statuses = (site.get("pod", name).get("status") or {}).get("containerStatuses") or []
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason") if statuses else None


def event(site: StorageSite, name: str, reason: str) -> dict:
    uid = site.get("pod", name)["metadata"]["uid"]  # not an earlier pod's of the same name
    return wait_until(f"{reason} event of {name}",
                      lambda: next(
(e for e in site.events(name) if e["reason"] == reason and e["involvedObject"].get("uid") == uid), None),
                      180, 2, retry_on=(Exception,))


def host_mounts(site: StorageSite, host: str) -> str:
    return site.ssh(host, "findmnt -rn -o TARGET,FSTYPE,SOURCE,OPTIONS").stdout


def sessions(site: StorageSite, host: str) -> str:
    return site.ssh(host, "iscsiadm -m session 2>&1 || true").stdout


def test_statefulset_replicas_keep_their_data_on_nfs(site):
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": NS},
           "spec": {"serviceName": "web", "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "podManagementPolicy": "Parallel",
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": pod_spec(f"[ -f /data/ordinal ] || hostname > /data/ordinal; {SLEEP}", [])},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                              "spec": claim("x", "kfab-nfs")["spec"]}]}}
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    site.apply(sts)
    for i in (0, 1):
        wait_until(f"web-{i} running", lambda i=i: running(site, f"web-{i}"), POD_START, 2, retry_on=(Exception,))
        assert site.exec(f"web-{i}", "cat /data/ordinal").strip() == f"web-{i}"
    old = site.get("pod", "web-0")
    node, uid = old["spec"]["nodeName"], old["metadata"]["uid"]
    mount = next(line for line in host_mounts(site, node).splitlines() if f"/pods/{uid}/volumes/data " in line)
    assert " nfs" in mount and "10.93.0.11:" in mount  # mounted on the VM from the NFS server on st1
    pv = site.get("pvc", "data-web-0")["spec"]["volumeName"]
    assert site.get("pv", pv, None)["spec"]["nfs"]["server"] == "10.93.0.11"

    # The agent restarts before the pod goes: the new agent tears down the mount its predecessor made.
    since = site.ssh(node, "date -u '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    site.ssh(node, "systemctl restart kfab-node")
    wait_until("the restarted agent registered",
               lambda: "registered" in site.ssh(
node, f"journalctl -u kfab-node --since '{since}' -o cat").stdout, 120, 2, retry_on=(Exception,))
    note = "echo written-before-delete > /data/note; echo ok"
    wait_until("exec through the new agent",
               lambda: site.exec("web-0", note).strip() == "ok", 60, 2, retry_on=(Exception,))
    site.kubectl("delete", "pod", "-n", NS, "web-0", "--wait=false")
    wait_until("web-0 replaced",
               lambda: (p := running(site, "web-0")) and p["metadata"]["uid"] != uid,
               POD_START, 2, retry_on=(Exception,))
    assert site.exec("web-0", "cat /data/ordinal /data/note").split() == ["web-0", "written-before-delete"]
    new = site.get("pod", "web-0")
    assert host_mounts(site, new["spec"]["nodeName"]).count(f"/pods/{new['metadata']['uid']}/volumes/data ") == 1
    # the old pod's mount went with it
    wait_until("old pod's NFS mount gone",
               lambda: f"/pods/{uid}/" not in host_mounts(site, node), 60, 0.2, retry_on=(Exception,))


def test_rwx_claim_is_shared_by_pods_on_two_nodes(site):
    site.apply(claim("shared", "kfab-nfs", "ReadWriteMany"))
    pods = []
    for host in VMS:
        spec = pod_spec(f"echo from-{host} > /shared/{host}; {SLEEP}",
                        [{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}], nodeName=host)
        pods.append(pod(f"rwx-{host}", spec))
    site.apply(*pods)
    for host in VMS:
        wait_until(f"rwx-{host} running",
                   lambda host=host: running(site, f"rwx-{host}"), POD_START, 2, retry_on=(Exception,))
    for host in VMS:
        other = next(h for h in VMS if h != host)
        wait_until(f"rwx-{host} reads what rwx-{other} wrote",
                   lambda host=host, other=other: site.exec(f"rwx-{host}", f"cat /shared/{other}").strip() ==
                   f"from-{other}", 30, 0.2, retry_on=(Exception,))
    site.kubectl("delete", "pod", "-n", NS, *[f"rwx-{h}" for h in VMS], "--wait=true", timeout=180)


def iscsi_deployment(name: str, claim_name: str) -> dict:
    spec = pod_spec(SLEEP, [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}])
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def deployment_pod(site: StorageSite, app: str) -> dict | None:
    items = json.loads(site.kubectl("get", "pods", "-n", NS, "-l", f"app={app}", "-o", "json").stdout)["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return live[0] if len(live) == 1 and running(site, live[0]["metadata"]["name"]) else None


def attached(site: StorageSite, node: str) -> list[str]:
    return [v["name"] for v in site.get("node", node, None)["status"].get("volumesAttached") or []]


def test_iscsi_volume_follows_its_pod_and_is_attached_to_one_node_at_a_time(site):
    site.apply(claim("block", "kfab-iscsi"), iscsi_deployment("db", "block"))
    db = wait_until("db pod running", lambda: deployment_pod(site, "db"), POD_START, 2, retry_on=(Exception,))
    first, name = db["spec"]["nodeName"], db["metadata"]["name"]
    token = uuid.uuid4().hex
    site.exec(name, f"echo {token} > /data/value && sync")
    pv = site.get("pv", site.get("pvc", "block")["spec"]["volumeName"], None)
    iqn = pv["spec"]["iscsi"]["iqn"]
    assert iqn in sessions(site, first)
    assert any(iqn in v for v in attached(site, first))
    assert any(" ext4 " in line for line in host_mounts(site, first).splitlines() if "/volumes/iscsi/" in line)

    # A pod on another node wanting the RWO volume is refused before any login, with an event saying why.
    intruder = pod_spec(SLEEP, [{"name": "data", "persistentVolumeClaim": {"claimName": "block"}}], nodeName="st2")
    intruder["nodeSelector"] = {}
    site.apply(pod("db-intruder", intruder))
    try:
        message = event(site, "db-intruder", "FailedAttachVolume")["message"]
        assert "Multi-Attach error" in message and first in message
        wait_until("db-intruder ContainerCreating",
                   lambda: waiting_reason(site, "db-intruder") == "ContainerCreating", 60, 0.2, retry_on=(Exception,))
    finally:
        site.kubectl("delete", "pod", "-n", NS, "db-intruder", "--wait=true", timeout=180)

    # Drain: the pod moves to the other VM; the first logs out, the second logs in; the data is there.
    try:
        site.kubectl("drain", first, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=240s",
                     timeout=300)
        moved = wait_until("db pod running elsewhere",
                           lambda: (p := deployment_pod(site, "db")) and
p["spec"]["nodeName"] != first and p, POD_START, 2, retry_on=(Exception,))
        assert site.exec(moved["metadata"]["name"], "cat /data/value").strip() == token
        assert iqn not in sessions(site, first) and iqn in sessions(site, moved["spec"]["nodeName"])
        assert not any(iqn in v for v in attached(site, first))
        assert any(iqn in v for v in attached(site, moved["spec"]["nodeName"]))
    finally:
        site.kubectl("uncordon", first)


def test_wrong_chap_secret_is_a_clear_event_and_nothing_is_mounted(site):
    site.apply(claim("chapped", "kfab-iscsi"))
    wait_until("claim chapped bound",
               lambda: site.get("pvc", "chapped")["status"].get("phase") == "Bound", 60, 0.2, retry_on=(Exception,))
    source = site.get("pv", site.get("pvc", "chapped")["spec"]["volumeName"], None)["spec"]["iscsi"]
    bad = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong-chap", "namespace": NS},
           "type": "kubernetes.io/iscsi-chap",
           "stringData": {"node.session.auth.username": "nobody", "node.session.auth.password": "not-the-password"}}
    spec = pod_spec(SLEEP, [{"name": "scratch", "emptyDir": {}},
                            {"name": "data", "iscsi": {**source, "secretRef": {"name": "wrong-chap"}}}],
                    nodeName=VMS[0])
    site.apply(bad, pod("badchap", spec))
    try:
        message = event(site, "badchap", "FailedMount")["message"]
        assert "authorization failure" in message or "Login failed" in message, message
        assert "not-the-password" not in message
        wait_until("badchap ContainerCreating",
                   lambda: waiting_reason(site, "badchap") == "ContainerCreating", 60, 0.2, retry_on=(Exception,))
        assert source["iqn"] not in sessions(site, VMS[0]) and source["iqn"] not in host_mounts(site, VMS[0])
        started = site.ssh(VMS[0], "podman ps -a -q --filter label=kfab.io/pod-name=badchap "
                                   "--filter label=kfab.io/container").stdout
        assert started.strip() == "", "no container starts while a volume is not mounted"
    finally:
        site.kubectl("delete", "pod", "-n", NS, "badchap", "--wait=true", timeout=180)


def test_unknown_nfs_export_is_a_failed_mount_with_the_servers_answer(site):
    spec = pod_spec(SLEEP, [{"name": "data", "nfs": {"server": "10.93.0.11", "path": "/no/such/export"}}],
                    nodeName=VMS[1])
    site.apply(pod("noexport", spec))
    try:
        message = event(site, "noexport", "FailedMount")["message"]
        assert "mount.nfs" in message and "/no/such/export" in message, message
        wait_until("noexport ContainerCreating",
                   lambda: waiting_reason(site, "noexport") == "ContainerCreating", 60, 0.2, retry_on=(Exception,))
    finally:
        site.kubectl("delete", "pod", "-n", NS, "noexport", "--wait=true", timeout=180)


def test_deleting_claims_with_delete_policy_removes_directory_and_lun(site):
    site.kubectl("delete", "statefulset,deployment", "-n", NS, "web", "db", "--ignore-not-found", "--wait=true",
                 timeout=180)
    wait_until("storage pods gone",
               lambda: not json.loads(site.kubectl(
"get", "pods", "-n", NS, "-o", "json").stdout)["items"], 180, 2, retry_on=(Exception,))
    claims = ["data-web-0", "data-web-1", "shared", "block", "chapped"]
    pvs = {c: site.get("pv", site.get("pvc", c)["spec"]["volumeName"], None) for c in claims}
    site.kubectl("delete", "pvc", "-n", NS, *claims, "--wait=true", timeout=180)
    for c, pv in pvs.items():
        name = pv["metadata"]["name"]
        wait_until(f"PV {name} deleted",
                   lambda name=name: site.kubectl("get", "pv", name, check=False).returncode != 0,
                   120, 1, retry_on=(Exception,))
        if "nfs" in pv["spec"]:
            path = pv["spec"]["nfs"]["path"]
            assert site.ssh("st1", f"test -e {path}", check=False).returncode != 0, f"{path} of {c} still there"
        else:
            iqn = pv["spec"]["iscsi"]["iqn"]
            assert iqn not in site.ssh("st1", "tgtadm --lld iscsi --mode target --op show").stdout
            assert site.ssh("st1", f"test -e /srv/kfab-iscsi/{name}.img", check=False).returncode != 0
    for host in VMS:  # nothing left behind on the nodes
        assert "/var/lib/kfab/" not in host_mounts(site, host)
        assert "iqn" not in sessions(site, host)
