"""Pure logic of the node agent: env expansion and resolution, container arguments, volume files, pod status."""

from __future__ import annotations

import asyncio
import base64

import pytest

from kfab.node import podstatus as ps
from kfab.node.containers import ContainerConfigError, create_args, expand, memory_bytes, resolve_env
from kfab.node.pods import backoff, pull_policy
from kfab.node.volumes import PodVolumes, VolumeError

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"}},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}]}}
OBJECTS = {
    ("ConfigMap", "ns", "cm"): {"kind": "ConfigMap", "data": {"a": "1", "b": "2"}},
    ("Secret", "ns", "s"): {"kind": "Secret", "data": {"token": base64.b64encode(b"t0p").decode()}},
}


async def lookup(kind, namespace, name):
    return OBJECTS.get((kind, namespace, name))


def test_expand_follows_kubelet_rules():
    assert expand("$(A)-$(B)-$$(A)-$(MISSING)", {"A": "x", "B": "y"}) == "x-y-$(A)-$(MISSING)"


def test_env_from_values_configmaps_secrets_and_fields():
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}], "env": [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "J", "value": "$(CM_a)+$(T)"},
        {"name": "O", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    env = asyncio.run(resolve_env(POD, container, lookup, "10.244.1.5", "10.0.0.2"))
    assert env == {"CM_a": "1", "CM_b": "2", "T": "t0p", "N": "p", "IP": "10.244.1.5", "L": "web", "J": "1+t0p"}


def test_missing_configmap_key_is_a_config_error():
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "z"}}}]}
    with pytest.raises(ContainerConfigError, match="couldn't find key z"):
        asyncio.run(resolve_env(POD, container, lookup, None, None))


def test_create_args_map_command_args_limits_and_security():
    container = {"name": "c", "image": "i", "command": ["sh", "-c"], "args": ["echo $(X)"], "workingDir": "/w",
                 "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                 "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True}}
    args = create_args(POD, container, podman_pod="ns_p_u-1", env={"X": "hi"}, mounts=[], attempt=2, init=False)
    assert args["entrypoint"] == ["sh", "-c"] and args["command"] == ["echo hi"]
    assert args["mem_limit"] == 64 * 2**20 and args["cpu_quota"] == 25000 and args["cpu_period"] == 100000
    assert args["user"] == "1000" and args["read_only"] is True and args["working_dir"] == "/w"
    assert args["name"] == "ns_p_u-1-c-2" and args["labels"]["kfab.io/attempt"] == "2"
    assert memory_bytes("1G") == 10**9


def test_pull_policy_defaults_and_backoff():
    assert pull_policy({"image": "busybox"}) == "Always"
    assert pull_policy({"image": "busybox:latest"}) == "Always"
    assert pull_policy({"image": "reg:5000/busybox:1"}) == "IfNotPresent"
    assert [backoff(n) for n in (0, 1, 2, 3, 10)] == [0, 10, 20, 40, 300]


def test_configmap_volume_files_follow_the_object(tmp_path):
    pod = dict(POD, spec={"volumes": [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path":
                                                                                              "sub/a.txt"}]}},
                                      {"name": "all", "configMap": {"name": "cm"}}]})
    volumes = PodVolumes(tmp_path, lookup)
    paths = asyncio.run(volumes.sync(pod, None, None))
    assert (paths["v"] / "sub" / "a.txt").read_text() == "1"
    assert sorted(p.name for p in paths["all"].iterdir()) == ["a", "b"]
    OBJECTS[("ConfigMap", "ns", "cm")] = {"kind": "ConfigMap", "data": {"a": "changed"}}
    try:
        asyncio.run(volumes.sync(pod, None, None))
        assert (paths["all"] / "a").read_text() == "changed" and not (paths["all"] / "b").exists()
    finally:
        OBJECTS[("ConfigMap", "ns", "cm")] = {"kind": "ConfigMap", "data": {"a": "1", "b": "2"}}
    mounts = volumes.mounts({"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/etc/x", "readOnly": True}]},
                            paths)
    assert mounts == [{"type": "bind", "source": str(paths["v"]), "target": "/etc/x", "read_only": True}]


def test_missing_configmap_and_unknown_sources_are_volume_errors(tmp_path):
    volumes = PodVolumes(tmp_path, lookup)
    with pytest.raises(VolumeError, match='configmap "gone" not found'):
        asyncio.run(volumes.sync(dict(POD, spec={"volumes": [{"name": "v", "configMap": {"name": "gone"}}]}),
                                 None, None))
    with pytest.raises(VolumeError, match="unsupported volume source gitRepo"):
        asyncio.run(volumes.sync(dict(POD, spec={"volumes": [{"name": "v", "gitRepo": {}}]}), None, None))


def _container(attempt: int, status: str, code: int = 0, started: str = "2026-01-01T00:00:00.5Z",
               finished: str = "0001-01-01T00:00:00Z") -> dict:
    return {"Id": f"id{attempt}", "Image": "img",
            "Config": {"Labels": {"kfab.io/container": "c", "kfab.io/attempt": str(attempt)}},
            "State": {"Status": status, "ExitCode": code, "StartedAt": started, "FinishedAt": finished}}


def test_container_status_reports_restarts_and_last_state():
    attempts = ps.attempts_by_name([_container(1, "running"), _container(0, "exited", 137,
                                                                          finished="2026-01-01T00:00:09Z")])["c"]
    st = ps.container_status({"name": "c", "image": "i"}, attempts, None, True, True)
    assert st["restartCount"] == 1 and "running" in st["state"] and st["ready"] is True
    assert st["lastState"]["terminated"]["exitCode"] == 137


def test_phase_by_restart_policy():
    done = [{"state": {"terminated": {"exitCode": 0}}, "restartCount": 0}]
    failed = [{"state": {"terminated": {"exitCode": 3}}, "restartCount": 0}]
    running = [{"state": {"running": {}}, "restartCount": 0}]
    never = {"spec": {"restartPolicy": "Never"}}
    assert ps.phase(never, True, False, done) == "Succeeded"
    assert ps.phase(never, True, False, failed) == "Failed"
    assert ps.phase({"spec": {}}, True, False, running) == "Running"
    assert ps.phase({"spec": {}}, False, False, running) == "Pending"
    assert ps.phase(never, False, True, []) == "Failed"


def test_projected_volume_merges_configmap_secret_and_downward_api(tmp_path):
    pod = dict(POD, spec={"volumes": [{"name": "all-in-one", "projected": {"sources": [
        {"configMap": {"name": "cm", "items": [{"key": "a", "path": "a.txt"}]}},
        {"secret": {"name": "s"}},
        {"downwardAPI": {"items": [{"path": "labels/app", "fieldRef": {"fieldPath": "metadata.labels['app']"}}]}},
    ]}}]})
    paths = asyncio.run(PodVolumes(tmp_path, lookup).sync(pod, None, None))
    root = paths["all-in-one"]
    assert (root / "a.txt").read_text() == "1" and (root / "token").read_bytes() == b"t0p"
    assert (root / "labels" / "app").read_text() == "web"


def test_empty_dir_is_world_writable_as_the_kubelet_makes_it(tmp_path):
    pod = dict(POD, spec={"volumes": [{"name": "scratch", "emptyDir": {}}]})
    paths = asyncio.run(PodVolumes(tmp_path, lookup).sync(pod, None, None))
    assert paths["scratch"].is_dir() and paths["scratch"].stat().st_mode & 0o777 == 0o777


def test_downward_api_whole_label_and_annotation_maps_format_as_the_kubelet():
    from kfab.node.containers import field_value
    pod = {"metadata": {"name": "p", "labels": {"tier": "web", "app": "shop"}, "annotations": {"note": 'say "hi"'}}}
    assert field_value(pod, "metadata.labels", None, None) == 'app="shop"\ntier="web"'
    assert field_value(pod, "metadata.annotations", None, None) == 'note="say \\"hi\\""'
    assert field_value(pod, "status.podIPs", "10.244.1.5", None) == "10.244.1.5"
    with pytest.raises(ContainerConfigError, match="spec.nope"):
        field_value(pod, "spec.nope", None, None)


def test_a_failed_heartbeat_drops_its_connections_and_is_retried_soon(monkeypatch):
    """After a failure the next renewal goes out on a fresh connection (to whoever holds the API's address now)
    within HEARTBEAT_RETRY, backing off to LEASE_RENEW; after a success, every LEASE_RENEW again."""
    from kfab.node import registration

    slept: list[float] = []
    outcomes = [OSError("no route"), TimeoutError(), TimeoutError(), None, None, OSError("gone"), None]

    async def sleep(seconds):
        slept.append(seconds)
        if len(slept) == len(outcomes):
            raise asyncio.CancelledError

    class Heartbeats:
        closed = 0

        async def close(self):
            self.closed += 1

    async def beat():
        outcome = outcomes[len(slept)]
        if outcome is not None:
            raise outcome

    client = Heartbeats()
    monkeypatch.setattr(registration.asyncio, "sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(registration.beat_every(client, beat, "node heartbeat"))
    renew, retry = registration.LEASE_RENEW, registration.HEARTBEAT_RETRY
    assert slept == [retry, retry * 2, retry * 4, renew, renew, retry, renew]
    assert client.closed == 4
