"""HA: two `kfab apiserver` processes over one real 3-member etcd cluster serve the same objects and
watches, keep serving with an etcd member killed, and keep Secrets encrypted in etcd."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import queue
import secrets
import subprocess
import threading

import pytest
from kubernetes import client, config, watch

from kfab.store import open_store
from tests.api.conftest import stop_server
from tests.etcd_cluster import EtcdCluster
from tests.store.apiservers import start_apiserver


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    """(etcd cluster, [client for API server A, client for API server B])."""
    with EtcdCluster() as etcd, contextlib.ExitStack() as stack:
        a_dir, b_dir = tmp_path_factory.mktemp("apiserver-a"), tmp_path_factory.mktemp("apiserver-b")
        procs = []
        stack.callback(lambda: [stop_server(p) for p in procs])
        proc_a, a = start_apiserver(a_dir, etcd.url)
        procs.append(proc_a)
        proc_b, b = start_apiserver(b_dir, etcd.url, pki_from=a_dir)
        procs.append(proc_b)
        clients = [config.new_client_from_config(config_file=str(s.kubeconfig)) for s in (a, b)]
        for c in clients:
            stack.callback(c.close)
        assert a.url != b.url
        yield etcd, clients


def configmap(name: str, value: str) -> dict:
    return {"metadata": {"name": name, "labels": {"test": "ha"}}, "data": {"k": value}}


def watch_events(api_client, resource_version: str, count: int) -> list[tuple[str, str, str, dict]]:
    """The next `count` ConfigMap events in `default` after resource_version, through one API server."""
    w = watch.Watch()
    seen = []
    for event in w.stream(client.CoreV1Api(api_client).list_namespaced_config_map, "default",
                          label_selector="test=ha", resource_version=resource_version, timeout_seconds=60):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version, obj.data or {}))
        if len(seen) == count:
            w.stop()
    return seen


async def keys_on_member(etcd, member: int, prefix: str) -> list[str]:
    store = await open_store(etcd.member_url(member))
    try:
        return [kv.key for kv in (await store.list(prefix))[0]]
    finally:
        await store.close()


def test_both_api_servers_serve_the_same_objects_and_watches(ha):
    _, (a, b) = ha
    api_a, api_b = client.CoreV1Api(a), client.CoreV1Api(b)
    start = api_b.list_namespaced_config_map("default", label_selector="test=ha").metadata.resource_version
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        watched = pool.submit(watch_events, b, start, 3)  # watching through B ...
        created = api_a.create_namespaced_config_map("default", configmap("shared", "1"))  # ... writing via A
        seen_by_b = api_b.read_namespaced_config_map("shared", "default")
        assert seen_by_b.metadata.uid == created.metadata.uid
        assert seen_by_b.metadata.resource_version == created.metadata.resource_version

        seen_by_b.data = {"k": "2"}
        updated = api_b.replace_namespaced_config_map("shared", "default", seen_by_b)
        # The stale version A holds is refused by A: one store, one resourceVersion sequence.
        created.data = {"k": "stale"}
        with pytest.raises(client.ApiException) as conflict:
            api_a.replace_namespaced_config_map("shared", "default", created)
        assert conflict.value.status == 409
        api_a.delete_namespaced_config_map("shared", "default")
        events = watched.result(timeout=90)
    assert [(t, n) for t, n, _, _ in events] == [("ADDED", "shared"), ("MODIFIED", "shared"), ("DELETED", "shared")]
    assert events[0][2] == created.metadata.resource_version
    assert events[1][2] == updated.metadata.resource_version and events[1][3] == {"k": "2"}


def follow(api_client, resource_version: str, out: "queue.Queue", stop: threading.Event) -> None:
    """Stream ConfigMap events in `default` through one API server into `out` until `stop` is set."""
    w = watch.Watch()
    for event in w.stream(client.CoreV1Api(api_client).list_namespaced_config_map, "default",
                          label_selector="test=ha", resource_version=resource_version, timeout_seconds=120):
        obj = event["object"]
        out.put((event["type"], obj.metadata.name, obj.metadata.resource_version))
        if stop.is_set():
            w.stop()


def next_events(out: "queue.Queue", n: int) -> list:
    return [out.get(timeout=60) for _ in range(n)]


def test_both_api_servers_keep_working_with_each_etcd_member_killed_in_turn(ha):
    etcd, (a, b) = ha
    api_a, api_b = client.CoreV1Api(a), client.CoreV1Api(b)
    start = api_a.list_namespaced_config_map("default", label_selector="test=ha").metadata.resource_version
    stop = threading.Event()
    seen_a, seen_b = queue.Queue(), queue.Queue()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        watchers = [pool.submit(follow, a, start, seen_a, stop), pool.submit(follow, b, start, seen_b, stop)]
        try:
            api_a.create_namespaced_config_map("default", configmap("before", "0"))
            assert next_events(seen_a, 1) == next_events(seen_b, 1)  # both watches are streaming
            # Kill each member in turn, so whichever member an API server's etcd watch uses is lost once.
            for down in range(3):
                etcd.stop_member(down, kill=True)
                try:
                    made = [api.create_namespaced_config_map("default", configmap(f"down-{down}-{i}", "1"))
                            for i, api in enumerate([api_a, api_b])]
                    listed_a = {c.metadata.name for c in api_a.list_namespaced_config_map(
                        "default", label_selector="test=ha").items}
                    listed_b = {c.metadata.name for c in api_b.list_namespaced_config_map(
                        "default", label_selector="test=ha").items}
                    assert {m.metadata.name for m in made} <= listed_a and listed_a == listed_b
                    expected = [("ADDED", m.metadata.name, m.metadata.resource_version) for m in made]
                    assert next_events(seen_a, 2) == expected
                    assert next_events(seen_b, 2) == expected
                finally:
                    etcd.start_member(down)
                # The killed member rejoined with the writes made while it was down (read through it alone).
                keys = asyncio.run(keys_on_member(etcd, down, f"/registry/configmaps/default/down-{down}-"))
                assert keys == [f"/registry/configmaps/default/down-{down}-{i}" for i in range(2)]
        finally:
            stop.set()
            api_b.create_namespaced_config_map("default", configmap("after", "2"))  # wakes the streams to stop
            for w in watchers:
                w.result(timeout=60)
    for name in ["before", "after"] + [f"down-{d}-{i}" for d in range(3) for i in range(2)]:
        api_a.delete_namespaced_config_map(name, "default")


def test_secrets_are_encrypted_in_etcd_and_read_through_either_api_server(ha):
    """Encryption at rest over etcd: both API servers hold the cluster's EncryptionConfiguration (the same PKI
    directory, as role pki gives every control-plane host); `strings` on every member's data finds no value."""
    etcd, (a, b) = ha
    value = f"etcd-at-rest-{secrets.token_hex(6)}"
    client.CoreV1Api(a).create_namespaced_secret("default", {"metadata": {"name": "at-rest"},
                                                             "stringData": {"pw": value}})
    got = client.CoreV1Api(b).read_namespaced_secret("at-rest", "default")
    assert base64.b64decode(got.data["pw"]).decode() == value

    async def raw() -> bytes:
        store = await open_store(etcd.url)
        try:
            return (await store.get("/registry/secrets/default/at-rest")).value
        finally:
            await store.close()
    stored = asyncio.run(raw())
    assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:"), stored[:40]
    encoded = base64.b64encode(value.encode()).decode()
    for name in etcd.names:
        for path in (etcd.dir / name).rglob("*"):
            if path.is_file():
                text = subprocess.run(["strings", "-n", "6", str(path)], capture_output=True, text=True).stdout
                assert value not in text and encoded not in text, f"{path} holds the Secret's value"
