"""The upgrade's canary pod (kfab/ops/canary.py) and what `kfab reset` says of pods it could not remove."""

from kfab.ops.canary import canary_pod, describe, image_for, started
from kfab.ops.reset import FAILED_MARK, reset_script


def test_canary_pod_is_pinned_tolerates_every_taint_and_pulls_nothing_new():
    pod = canary_pod("worker-1", "registry.local/web:1")
    spec = pod["spec"]
    assert spec["nodeName"] == "worker-1" and spec["restartPolicy"] == "Never"
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert len(pod["metadata"]["name"]) <= 63 and pod["metadata"]["name"].startswith("kfab-canary-worker-1-")


def test_started_counts_a_running_or_a_finished_container_but_not_a_waiting_one():
    def pod(state):
        return {"status": {"containerStatuses": [{"name": "canary", "state": state}]}}
    assert started(pod({"running": {"startedAt": "t"}}))
    assert started(pod({"terminated": {"exitCode": 0, "startedAt": "t"}}))
    assert not started(pod({"terminated": {"exitCode": 128}}))    # never ran: a failed create
    assert not started(pod({"waiting": {"reason": "ContainerCreating"}}))
    assert not started({"status": {}})
    assert describe(pod({"waiting": {"reason": "ContainerCreating"}})) == \
        "phase Pending, waiting (canary: ContainerCreating)"


def test_canary_image_is_one_the_node_ran():
    pods = [{"spec": {"containers": []}}, {"spec": {"containers": [{"name": "a", "image": "r/x:1"}]}}]
    assert image_for(pods) == "r/x:1"
    assert image_for([]) is None


def test_reset_names_a_pod_podman_would_not_remove_with_podmans_reason():
    script = reset_script({"venv_root": "/opt/kfab", "config_dir": "/etc/kfab", "data_dir": "/var/lib/kfab",
                           "etcd_pki_dir": "/etc/kfab-etcd", "etcd_data_dir": "/var/lib/etcd/kfab",
                           "registry_dir": "/var/lib/docker-registry", "cluster_cidr": "10.244.0.0/16"})
    assert f'echo "{FAILED_MARK} podman pod $name: ' in script
    # A second try after killing the pod and removing its containers one by one, each bounded in time.
    assert script.count('timeout 60 podman pod rm -f -t 0 "$p"') == 2
    assert 'podman pod kill "$p"' in script and "--depend" in script
    # Podman's API service is stopped before the removal (requests the agent sent may still make a pod),
    # and its socket started again afterwards if it was active.
    stop = script.index("systemctl stop podman.socket podman.service")
    assert stop < script.index('podman pod rm -f -t 0 "$p"')
    assert script.index('systemctl start podman.socket') > script.index("podman network rm -f podnet")
    # Pods are stopped and their containers' cleanup let finish before any removal (Podman 4.3's race).
    assert script.index('podman pod stop -t 0 "$p"') < script.index("pgrep -f 'container cleanup'") \
        < script.index('podman pod rm -f -t 0 "$p"')
