"""Third-party Python clients work against kfab as against kube-apiserver: kr8s, lightkube and
kubernetes-asyncio create, read, patch, delete and watch built-in kinds (ConfigMap) and custom resources."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import urllib.request

import pytest

from tests.api.crd_manifests import crd_manifest, object_with_spec



@pytest.fixture(scope="module")
def notes(kubectl):
    group = f"n{secrets.token_hex(3)}.example.com"
    schema = object_with_spec({"text": {"type": "string"}})
    kubectl("apply", "-f", "-", input=crd_manifest(group, "notes", "Note", schema, singular="note"))
    kubectl("wait", "--for=condition=Established", f"crd/notes.{group}", "--timeout=20s")
    yield group
    kubectl("delete", "crd", f"notes.{group}", "--timeout=30s", check=False)


def test_trailing_slash_discovery_paths_answer_as_without(kfab_server, kubectl):
    ctx = ssl.create_default_context(cafile=str(kfab_server.data_dir / "pki" / "ca.crt"))
    with urllib.request.urlopen(f"{kfab_server.url}/version/", context=ctx, timeout=10) as resp:
        assert json.loads(resp.read())["major"] == "1"
        assert resp.headers["Content-Type"] == "application/json"
    for path in ("/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1"):
        with_slash = json.loads(kubectl("get", "--raw", path + "/").stdout)
        assert with_slash == json.loads(kubectl("get", "--raw", path).stdout)


# --- kr8s -------------------------------------------------------------------------------------------------

@pytest.mark.timeout(120)  # kr8s's watch has no timeout of its own
def test_kr8s_crud_and_watch_on_configmaps_and_custom_resources(kfab_server, namespace, notes):
    import kr8s
    from kr8s.objects import ConfigMap, new_class

    api = kr8s.api(kubeconfig=str(kfab_server.kubeconfig))
    assert api.version()["major"] == "1"
    cm = ConfigMap({"metadata": {"name": "kr8s-cm", "namespace": namespace}, "data": {"a": "1"}}, api=api)
    cm.create()
    cm.patch({"data": {"a": "2"}})
    cm.refresh()
    assert cm.raw["data"] == {"a": "2"}
    assert "kr8s-cm" in [c.name for c in api.get("configmaps", namespace=namespace)]

    Note = new_class(kind="Note", version=f"{notes}/v1", namespaced=True, plural="notes")
    note = Note({"metadata": {"name": "kr8s-note", "namespace": namespace}, "spec": {"text": "hi"}}, api=api)
    note.create()
    note.patch({"spec": {"text": "bye"}})
    note.refresh()
    assert note.spec["text"] == "bye"
    events = []
    for event, obj in api.watch(f"notes.{notes}", namespace=namespace):
        events.append((event, obj.name))
        if event == "ADDED":
            note.delete()
        if event == "DELETED":
            break
    assert events == [("ADDED", "kr8s-note"), ("DELETED", "kr8s-note")]
    cm.delete()
    assert not cm.exists()


# --- lightkube ------------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_lightkube_crud_and_watch_on_configmaps_and_custom_resources(kfab_server, namespace, notes):
    from lightkube import Client, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap
    from lightkube.types import PatchType

    client = Client(KubeConfig.from_file(str(kfab_server.kubeconfig)))
    client.create(ConfigMap(metadata=ObjectMeta(name="lk-cm", namespace=namespace), data={"a": "1"}))
    client.patch(ConfigMap, "lk-cm", {"data": {"b": "2"}}, namespace=namespace)
    assert client.get(ConfigMap, "lk-cm", namespace=namespace).data == {"a": "1", "b": "2"}
    client.apply(ConfigMap(metadata=ObjectMeta(name="lk-cm", namespace=namespace), data={"a": "3"}),
                 field_manager="lightkube", force=True)
    assert client.get(ConfigMap, "lk-cm", namespace=namespace).data["a"] == "3"

    Note = create_namespaced_resource(notes, "v1", "Note", "notes")
    client.create(Note(metadata=ObjectMeta(name="lk-note", namespace=namespace), spec={"text": "hi"}))
    client.patch(Note, "lk-note", {"spec": {"text": "bye"}}, namespace=namespace, patch_type=PatchType.MERGE)
    assert client.get(Note, "lk-note", namespace=namespace).spec == {"text": "bye"}
    listed = [n.metadata.name for n in client.list(Note, namespace=namespace)]
    assert listed == ["lk-note"]
    events = []
    for op, obj in client.watch(Note, namespace=namespace, resource_version="0"):
        events.append((op, obj.metadata.name))
        if op == "ADDED":
            client.delete(Note, "lk-note", namespace=namespace)
        if op == "DELETED":
            break
    assert events == [("ADDED", "lk-note"), ("DELETED", "lk-note")]
    client.delete(ConfigMap, "lk-cm", namespace=namespace)


# --- kubernetes-asyncio ---------------------------------------------------------------------------------

def test_kubernetes_asyncio_crud_and_watch_on_configmaps_and_custom_resources(kfab_server, namespace, notes):
    from kubernetes_asyncio import client, config, watch

    async def scenario() -> list:
        api_client = await config.new_client_from_config(config_file=str(kfab_server.kubeconfig))
        async with api_client:
            core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
            await core.create_namespaced_config_map(namespace, {"metadata": {"name": "aio-cm"}, "data": {"a": "1"}})
            await core.patch_namespaced_config_map("aio-cm", namespace, {"data": {"a": "2"}},
                                                   _content_type="application/strategic-merge-patch+json")
            assert (await core.read_namespaced_config_map("aio-cm", namespace)).data == {"a": "2"}
            await core.delete_namespaced_config_map("aio-cm", namespace)

            body = {"apiVersion": f"{notes}/v1", "kind": "Note", "metadata": {"name": "aio-note"},
                    "spec": {"text": "hi"}}
            listed = await custom.list_namespaced_custom_object(notes, "v1", namespace, "notes")
            await custom.create_namespaced_custom_object(notes, "v1", namespace, "notes", body)
            await custom.patch_namespaced_custom_object(notes, "v1", namespace, "notes", "aio-note",
                                                        {"spec": {"text": "bye"}},
                                                        _content_type="application/merge-patch+json")
            got = await custom.get_namespaced_custom_object(notes, "v1", namespace, "notes", "aio-note")
            assert got["spec"] == {"text": "bye"}
            await custom.delete_namespaced_custom_object(notes, "v1", namespace, "notes", "aio-note")
            seen = []
            async with watch.Watch().stream(custom.list_namespaced_custom_object, notes, "v1", namespace, "notes",
                                            resource_version=listed["metadata"]["resourceVersion"],
                                            timeout_seconds=5) as stream:
                async for event in stream:
                    seen.append((event["type"], event["object"]["metadata"]["name"]))
                    if event["type"] == "DELETED":
                        break
            return seen

    assert asyncio.run(scenario()) == [("ADDED", "aio-note"), ("MODIFIED", "aio-note"), ("DELETED", "aio-note")]
