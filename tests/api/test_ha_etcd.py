"""HA: two `kfab apiserver` processes over one real 3-member etcd cluster serve the same objects and
watches, and keep serving with an etcd member killed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

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


def test_both_api_servers_keep_working_with_an_etcd_member_killed(ha):
    etcd, (a, b) = ha
    api_a, api_b = client.CoreV1Api(a), client.CoreV1Api(b)
    start = api_a.list_namespaced_config_map("default", label_selector="test=ha").metadata.resource_version
    etcd.stop_member(0, kill=True)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            watch_a = pool.submit(watch_events, a, start, 4)
            watch_b = pool.submit(watch_events, b, start, 4)
            for i, api in enumerate([api_a, api_b, api_a, api_b]):
                api.create_namespaced_config_map("default", configmap(f"down-{i}", str(i)))
            names = {n for n in ("down-0", "down-1", "down-2", "down-3")}
            listed_a = {c.metadata.name for c in api_a.list_namespaced_config_map(
                "default", label_selector="test=ha").items}
            listed_b = {c.metadata.name for c in api_b.list_namespaced_config_map(
                "default", label_selector="test=ha").items}
            assert names <= listed_a and listed_a == listed_b
            events_a, events_b = watch_a.result(timeout=90), watch_b.result(timeout=90)
        assert [n for _, n, _, _ in events_a] == ["down-0", "down-1", "down-2", "down-3"]
        assert events_a == events_b
    finally:
        etcd.start_member(0)
    # The killed member rejoins and has the writes made while it was down (read through it alone).
    assert asyncio.run(keys_on_member(etcd, 0, "/registry/configmaps/default/down-")) == [
        f"/registry/configmaps/default/down-{i}" for i in range(4)]
    api_b.delete_namespaced_config_map("down-0", "default")
    for i in range(1, 4):
        api_a.delete_namespaced_config_map(f"down-{i}", "default")
