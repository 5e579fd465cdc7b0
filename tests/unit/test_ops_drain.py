"""Pure logic of the lifecycle commands: which pods a drain removes (kubectl drain's filters), how a kubeconfig
is merged, what reset's script removes."""

from __future__ import annotations

from kfab.ops.drain import is_ready, plan_drain
from kfab.ops.kubeconfig import merge
from kfab.ops.reset import reset_script


def pod(name, owner=None, volumes=(), phase="Running", annotations=None):
    meta = {"name": name, "namespace": "default", "uid": name + "-uid", "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "controller": True}]
    return {"metadata": meta, "spec": {"volumes": list(volumes)}, "status": {"phase": phase}}


def test_drain_removes_controller_pods_and_leaves_daemonset_and_mirror_pods():
    plan = plan_drain([pod("a", "ReplicaSet"), pod("d", "DaemonSet"),
                       pod("m", annotations={"kubernetes.io/config.mirror": "x"}), pod("s", "StatefulSet")])
    assert [p["metadata"]["name"] for p in plan.delete] == ["a", "s"]
    assert plan.skipped == ["default/d (DaemonSet-managed)", "default/m (mirror pod)"]
    assert plan.refused == []


def test_drain_refuses_unmanaged_and_emptydir_pods_unless_told():
    pods = [pod("bare"), pod("scratch", "ReplicaSet", volumes=[{"name": "v", "emptyDir": {}}]),
            pod("done", phase="Succeeded")]
    plan = plan_drain(pods)
    assert [p["metadata"]["name"] for p in plan.delete] == ["done"]
    assert plan.refused == ["default/bare is not managed by a controller (--force deletes it for good)",
                            "default/scratch has emptyDir data (--delete-emptydir-data loses it)"]
    plan = plan_drain(pods, force=True, delete_emptydir_data=True)
    assert [p["metadata"]["name"] for p in plan.delete] == ["bare", "scratch", "done"]


def test_node_ready_only_with_a_true_ready_condition():
    assert is_ready({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert not is_ready({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert not is_ready({})


def test_merge_replaces_same_named_entries_and_keeps_the_rest():
    old = {"apiVersion": "v1", "kind": "Config", "preferences": {"colors": True}, "current-context": "x",
           "clusters": [{"name": "x"}, {"name": "c"}], "users": [{"name": "u"}], "contexts": [{"name": "c"}]}
    new = {"clusters": [{"name": "c", "cluster": {"server": "s"}}], "users": [{"name": "c-admin"}],
           "contexts": [{"name": "c"}], "current-context": "c"}
    merged = merge(old, new)
    assert merged["clusters"] == [{"name": "x"}, {"name": "c", "cluster": {"server": "s"}}]
    assert merged["users"] == [{"name": "u"}, {"name": "c-admin"}]
    assert merged["current-context"] == "c" and merged["preferences"] == {"colors": True}


def test_reset_script_removes_what_kfab_installs():
    script = reset_script({"venv_root": "/opt/kfab", "config_dir": "/etc/kfab", "data_dir": "/var/lib/kfab",
                           "etcd_pki_dir": "/etc/kfab-etcd", "etcd_data_dir": "/var/lib/etcd/kfab",
                           "registry_dir": "/var/lib/docker-registry", "cluster_cidr": "10.244.0.0/16"})
    for expected in ("nft delete table ip kfab", "ip route flush proto 77", "label=kfab.io/pod-uid",
                     "/opt/kfab", "/etc/kfab", "/var/lib/kfab", "/var/lib/etcd/kfab", "kfab-registry.conf",
                     "kfab-node.service", "kfab-apiserver.service", "-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN"):
        assert expected in script, expected
