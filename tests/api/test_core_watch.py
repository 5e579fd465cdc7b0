"""Watches: what informers, `kubectl get -w` and controllers rely on."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
import pytest
from kubernetes import client, watch

from kfab.pki import ControlPlanePKI, client_ssl_context


def events(k8s, namespace, **kw):
    w = watch.Watch()
    return [(e["type"], e["object"].metadata.name) for e in
            w.stream(client.CoreV1Api(k8s).list_namespaced_config_map, namespace, timeout_seconds=1, **kw)]


def test_watch_from_resource_version_sees_changes_in_order(k8s, namespace):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "v"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    core.delete_namespaced_config_map("a", namespace)
    seen = events(k8s, namespace, resource_version=rv)
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]


def test_watch_resumes_after_a_resource_version(k8s, namespace):
    core = client.CoreV1Api(k8s)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "old"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "new"}})
    assert events(k8s, namespace, resource_version=first.metadata.resource_version) == [("ADDED", "new")]


def test_watch_without_resource_version_starts_with_current_state(k8s, namespace):
    core = client.CoreV1Api(k8s)
    for name in ("x", "y"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    state = [("ADDED", "kube-root-ca.crt"), ("ADDED", "x"), ("ADDED", "y")]  # kube-root-ca.crt: every namespace's
    assert events(k8s, namespace) == state
    assert events(k8s, namespace, resource_version="0") == state


def test_label_selector_watch_sees_objects_enter_and_leave(k8s, namespace):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c", "labels": {"tier": "db"}}})
    core.patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"tier": "web"}}})
    core.patch_namespaced_config_map("c", namespace, {"data": {"k": "v"}})
    core.patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"tier": "db"}}})
    core.delete_namespaced_config_map("c", namespace)
    seen = events(k8s, namespace, resource_version=rv, label_selector="tier=web")
    assert seen == [("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")]


def test_field_selector_watch_of_one_object(k8s, namespace):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    for name in ("one", "two"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    assert events(k8s, namespace, resource_version=rv, field_selector="metadata.name=two") == [("ADDED", "two")]


def test_watch_streams_live_events(k8s, namespace):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    stream = watch.Watch()
    got = []

    def change_later():
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "live"}})

    threading.Thread(target=change_later).start()
    for event in stream.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=10):
        got.append((event["type"], event["object"].metadata.name))
        stream.stop()
    assert got == [("ADDED", "live")]


def test_deleted_event_carries_the_deletes_resource_version(k8s, namespace):
    core = client.CoreV1Api(k8s)
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "d"}})
    core.delete_namespaced_config_map("d", namespace)
    after = core.list_namespaced_config_map(namespace).metadata.resource_version
    w = watch.Watch()
    deleted = [e["object"] for e in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=1,
                                            resource_version=made.metadata.resource_version)]
    assert len(deleted) == 1
    assert int(made.metadata.resource_version) < int(deleted[0].metadata.resource_version) <= int(after)


# --- raw HTTP: bookmarks, initial events, many watchers -----------------------------------------

def ssl_context(server):
    pki = ControlPlanePKI(server.data_dir / "pki")
    return client_ssl_context(pki, pki.admin_cert_path, pki.admin_key_path)


async def read_events(session, url, max_events=None):
    async with session.get(url) as resp:
        return await read_open(resp, max_events)


async def read_open(resp, max_events=None):
    assert resp.status == 200
    out = []
    async for line in resp.content:
        out.append(json.loads(line))
        if max_events and len(out) >= max_events:
            break
    resp.close()
    return out


def test_initial_events_end_with_a_bookmark(kfab_server, k8s, namespace):
    client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"metadata": {"name": "init"}})
    url = (f"{kfab_server.url}/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true"
           "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")

    async def run():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(kfab_server))) as s:
            return await read_events(s, url)

    got = asyncio.run(run())
    # the namespace's state (with kube-root-ca.crt, as every namespace), then the bookmark that ends it
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in got[:3]] == [
        ("ADDED", "init"), ("ADDED", "kube-root-ca.crt"), ("BOOKMARK", None)]
    assert got[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert got[-1]["type"] == "BOOKMARK"  # the watch ends at timeoutSeconds with where it got to


def test_hundred_watchers_all_see_one_event(kfab_server, k8s, namespace):
    core = client.CoreV1Api(k8s)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    url = f"{kfab_server.url}/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={rv}"

    async def run():
        connector = aiohttp.TCPConnector(ssl=ssl_context(kfab_server), limit=0)
        async with aiohttp.ClientSession(connector=connector) as s:
            # every watch is open (response headers in) before the event is written
            responses = await asyncio.gather(*(s.get(url) for _ in range(100)))
            await asyncio.to_thread(core.create_namespaced_config_map, namespace, {"metadata": {"name": "fan"}})
            return await asyncio.wait_for(asyncio.gather(*(read_open(r, 1) for r in responses)), 30)

    results = asyncio.run(run())
    assert all([e["type"] for e in r] == ["ADDED"] and r[0]["object"]["metadata"]["name"] == "fan"
               for r in results)


def test_watch_with_bad_resource_version_is_400(kfab_server, k8s, namespace):
    with pytest.raises(client.ApiException) as e:
        client.CoreV1Api(k8s).list_namespaced_config_map(namespace, watch=True, resource_version="abc",
                                                          _preload_content=False)
    assert e.value.status == 400
