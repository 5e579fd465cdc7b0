"""Pure logic of the node's network volumes: the mount table, NFS mount commands, iSCSI names, CHAP
settings and iscsiadm commands, attachment naming, and that a pod's directory is never deleted through a mount."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kfab.node.storage import iscsi, mounts, nfs
from kfab.node.storage.attach import lease_name, node_volume_status
from kfab.node.storage.iscsi import IscsiSourceError, IscsiTarget
from kfab.node.volumes import PodVolumes, VolumeError

MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:45 / /var/lib/kfab/pods/u1/volumes/data rw,relatime shared:20 - nfs4 10.93.0.11:/exports/pvc-1 rw,vers=4.1
41 22 8:0 / /var/lib/kfab/volumes/iscsi/10.93.0.11:3260-iqn.2026-11.io.kfab:v1-lun-1 rw - ext4 /dev/sda rw
42 22 8:0 / /var/lib/kfab/pods/u2/volumes/db rw - ext4 /dev/sda rw
43 22 8:0 / /var/lib/kfab/pods/u3/volumes/db ro - ext4 /dev/sda rw
44 42 0:50 / /var/lib/kfab/pods/u2/volumes/db/deep rw - tmpfs tmpfs rw
45 22 0:51 / /mnt/with\\040space rw - tmpfs tmpfs rw
"""


def test_mountinfo_is_parsed_with_escapes_and_devices():
    entries = mounts.parse_mountinfo(MOUNTINFO)
    assert entries[1].fs_type == "nfs4" and entries[1].source == "10.93.0.11:/exports/pvc-1"
    assert entries[-1].mount_point == "/mnt/with space"
    assert mounts.mounted_at(Path("/var/lib/kfab/pods/u1/volumes/data"), entries).device == "0:45"
    assert mounts.mounted_at(Path("/var/lib/kfab/pods/u1"), entries) is None


def test_mounts_under_a_pod_come_deepest_first():
    entries = mounts.parse_mountinfo(MOUNTINFO)
    under = [e.mount_point for e in mounts.mounts_under(Path("/var/lib/kfab/pods/u2"), entries)]
    assert under == ["/var/lib/kfab/pods/u2/volumes/db/deep", "/var/lib/kfab/pods/u2/volumes/db"]
    assert mounts.mounts_under(Path("/var/lib/kfab/pods/u"), entries) == []  # a prefix of a name is not a parent


def test_an_iscsi_volume_is_in_use_while_a_pod_binds_it():
    entries = mounts.parse_mountinfo(MOUNTINFO)
    pods = Path("/var/lib/kfab/pods")
    assert mounts.users_of("8:0", "/", entries, pods) == ["/var/lib/kfab/pods/u2/volumes/db",
                                                          "/var/lib/kfab/pods/u3/volumes/db"]
    rest = [e for e in entries if not e.mount_point.startswith("/var/lib/kfab/pods/u")]
    assert mounts.users_of("8:0", "/", rest, pods) == []  # only the node-wide mount: free to log out


def test_nfs_mount_command_takes_pv_mount_options_and_read_only():
    source = {"server": "10.93.0.11", "path": "/exports/pvc-1"}
    cmd = nfs.mount_command(source, ["vers=4.1", "hard,timeo=600"], False, Path("/p"))
    assert cmd == ["mount", "-t", "nfs", "-o", "vers=4.1,hard,timeo=600", "10.93.0.11:/exports/pvc-1", "/p"]
    assert nfs.mount_command(source, ["rw", "vers=3"], True, Path("/p"))[4] == "vers=3,ro"
    assert nfs.mount_command({**source, "readOnly": True}, None, False, Path("/p"))[3:5] == ["-o", "ro"]
    assert nfs.mount_command({"server": "fd00::5", "path": "/x"}, None, False, Path("/p")) == \
        ["mount", "-t", "nfs", "[fd00::5]:/x", "/p"]


def test_iscsi_target_names_match_the_kubelet():
    t = IscsiTarget.from_source({"targetPortal": "10.93.0.11", "iqn": "iqn.2026-11.io.kfab:pvc-1", "lun": 1}, "ns")
    assert t.portal == "10.93.0.11:3260" and t.fs_type == "ext4" and not t.read_only
    assert t.unique_name == "kubernetes.io/iscsi/10.93.0.11:3260:iqn.2026-11.io.kfab:pvc-1:1"
    assert str(t.by_path) == "/dev/disk/by-path/ip-10.93.0.11:3260-iscsi-iqn.2026-11.io.kfab:pvc-1-lun-1"
    assert t.mount_name == "10.93.0.11:3260-iqn.2026-11.io.kfab:pvc-1-lun-1"
    assert IscsiTarget.from_source({"targetPortal": "[fd00::5]", "iqn": "q"}, "ns").portal == "[fd00::5]:3260"
    assert IscsiTarget.from_source({"targetPortal": "h:3261", "iqn": "q"}, "ns").portal == "h:3261"


@pytest.mark.parametrize("source, message", [
    ({"iqn": "q"}, "iscsi.targetPortal is required"),
    ({"targetPortal": "h"}, "iscsi.iqn is required"),
    ({"targetPortal": "h", "iqn": "q", "lun": 300}, "iscsi.lun: 300 is not between 0 and 255"),
    ({"targetPortal": "h", "iqn": "q", "lun": "x"}, "iscsi.lun: 'x' is not a number"),
    ({"targetPortal": "h", "iqn": "q", "chapAuthSession": True}, "iscsi.secretRef.name is required"),
])
def test_bad_iscsi_sources_are_named(source, message):
    with pytest.raises(IscsiSourceError, match=message.replace("(", r"\(")):
        IscsiTarget.from_source(source, "ns")


def test_chap_settings_from_an_iscsi_chap_secret():
    secret = {"node.session.auth.username": b"user", "node.session.auth.password": b"pw",
              "discovery.sendtargets.auth.username": b"duser", "discovery.sendtargets.auth.password": b"dpw",
              "node.session.auth.username_in": b"target", "node.session.auth.password_in": b"tpw"}
    assert iscsi.chap_settings(secret, "session") == [
        ("node.session.auth.authmethod", "CHAP"), ("node.session.auth.username", "user"),
        ("node.session.auth.password", "pw"), ("node.session.auth.username_in", "target"),
        ("node.session.auth.password_in", "tpw")]
    assert iscsi.chap_settings(secret, "discovery")[0] == ("discovery.sendtargets.auth.authmethod", "CHAP")
    with pytest.raises(IscsiSourceError, match="no node.session.auth.password"):
        iscsi.chap_settings({"node.session.auth.username": b"u"}, "session")


def test_iscsiadm_commands_set_chap_before_login_and_clear_it_without():
    t = IscsiTarget.from_source({"targetPortal": "10.0.0.1", "iqn": "iqn.x:y", "lun": 0}, "ns")
    node = iscsi.node_commands(t, [("node.session.auth.authmethod", "CHAP"), ("node.session.auth.username", "u")])
    assert node[0][-4:] == ["-n", "node.session.auth.authmethod", "-v", "CHAP"]
    assert node[-1] == ["iscsiadm", "-m", "node", "-p", "10.0.0.1:3260", "-T", "iqn.x:y", "-I", "default", "--login"]
    assert iscsi.node_commands(t, [])[0][-2:] == ["-v", "None"]
    disc = iscsi.discovery_commands(t, [])
    assert disc[0][-2:] == ["-o", "new"] and disc[1][-2:] == ["-v", "None"] and disc[-1][-1] == "--discover"
    assert [c[-1] for c in iscsi.logout_commands(t)] == ["--logout", "delete"]


def test_sessions_blkid_and_mkfs():
    text = "tcp: [1] 10.93.0.11:3260,1 iqn.2026-11.io.kfab:pvc-1 (non-flash)\n"
    assert iscsi.parse_sessions(text) == {("10.93.0.11:3260", "iqn.2026-11.io.kfab:pvc-1")}
    assert iscsi.parse_blkid("DEVNAME=/dev/sda\nTYPE=ext4\n")["TYPE"] == "ext4"
    assert iscsi.mkfs_command("ext4", "/dev/sda") == ["mkfs.ext4", "-F", "-m0", "/dev/sda"]
    assert iscsi.mkfs_command("xfs", "/dev/sda") == ["mkfs.xfs", "/dev/sda"]


def test_attachment_records():
    assert lease_name("kubernetes.io/iscsi/a:1:q:0") != lease_name("kubernetes.io/iscsi/a:1:q:1")
    assert len(lease_name("x" * 500)) <= 63
    assert node_volume_status({"b": "/dev/sdb", "a": "/dev/sda"}) == {
        "volumesAttached": [{"name": "a", "devicePath": "/dev/sda"}, {"name": "b", "devicePath": "/dev/sdb"}],
        "volumesInUse": ["a", "b"]}


def test_iscsi_target_record_round_trips_without_secrets(tmp_path):
    t = IscsiTarget.from_source({"targetPortal": "h", "iqn": "q", "chapAuthSession": True,
                                 "secretRef": {"name": "chap"}}, "ns")
    t.save(tmp_path / "r.json")
    assert IscsiTarget.load(tmp_path / "r.json") == t and t.secret_namespace == "ns"
    assert "password" not in (tmp_path / "r.json").read_text()


def test_removing_a_pod_directory_never_descends_into_a_mount(tmp_path):
    pod = tmp_path / "u1"
    (pod / "volumes" / "data").mkdir(parents=True)
    (pod / "volumes" / "data" / "precious").write_text("on the NFS server")
    (pod / "volumes" / "scratch").mkdir()
    (pod / "volumes" / "scratch" / "f").write_text("x")
    assert mounts.remove_tree(pod, {str(pod / "volumes" / "data")}) is False
    assert (pod / "volumes" / "data" / "precious").exists() and not (pod / "volumes" / "scratch").exists()
    assert mounts.remove_tree(pod, set()) is True and not pod.exists()


async def _objects(kind, namespace, name):
    return {
        ("PersistentVolumeClaim", "ns", "c"): {"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}},
        ("PersistentVolume", "", "pv1"): {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                   "iscsi": {"targetPortal": "h", "lun": 0}}},
        ("PersistentVolumeClaim", "ns", "g"): {"spec": {"volumeName": "pv2"}, "status": {"phase": "Bound"}},
        ("PersistentVolume", "", "pv2"): {"spec": {"capacity": {"storage": "1Gi"}, "glusterfs": {}}},
    }.get((kind, namespace, name))


def _pod(volume):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "c"}], "volumes": [volume]}}


def test_bad_network_volume_sources_fail_the_mount_by_name(tmp_path):
    volumes = PodVolumes(tmp_path / "pods", _objects)
    with pytest.raises(VolumeError, match='volume "pv1": iscsi.iqn is required') as e:
        asyncio.run(volumes.sync(_pod({"name": "data", "persistentVolumeClaim": {"claimName": "c"}}), None, None))
    assert e.value.reason == "FailedMount"
    with pytest.raises(VolumeError, match='volume "web": nfs.path is required'):
        asyncio.run(volumes.sync(_pod({"name": "web", "nfs": {"server": "h"}}), None, None))
    with pytest.raises(VolumeError, match='uses unsupported volume source glusterfs') as e:
        asyncio.run(volumes.sync(_pod({"name": "g", "persistentVolumeClaim": {"claimName": "g"}}), None, None))
    assert e.value.reason == "UnsupportedVolume"
    assert not (tmp_path / "volumes").exists()  # nothing half-done on the node


def test_a_node_without_an_initiator_has_no_sessions_to_log_out_of(monkeypatch):
    # A container worker has no iscsiadm: releasing a failed attach there must not fail (it frees the claim).
    monkeypatch.setenv("PATH", "/nonexistent")
    assert asyncio.run(iscsi.sessions()) == set()
    t = IscsiTarget.from_source({"targetPortal": "h", "iqn": "q"}, "ns")
    asyncio.run(iscsi.logout(t))
