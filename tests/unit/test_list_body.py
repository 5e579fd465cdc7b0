"""List items written from stored bytes and watch events decoded once: each must equal what decoding gives."""

import json

from kfab.api import list_body, strategy
from kfab.api.watch import SharedDecoding, _Filter, translate
from kfab.objects import jsonwire
from kfab.objects.registry import REGISTRY
from kfab.objects.selectors import parse_field_selector, parse_label_selector
from kfab.store.base import KeyValue, WatchEvent

CM = REGISTRY.by_kind("v1", "ConfigMap")
EVENT = REGISTRY.by_kind("v1", "Event")
DEPLOY = REGISTRY.by_kind("apps/v1", "Deployment")


def stored(obj: dict, key: str = "/registry/configmaps/default/a", revision: int = 7) -> KeyValue:
    return KeyValue(key, strategy.encode(obj), 3, revision)


def item(kv: KeyValue, rt=CM) -> dict:
    return json.loads(list_body.item_bytes(kv, rt, rt.api_version.encode()))


def test_item_is_the_stored_object_with_its_resource_version():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default",
                                                                "labels": {"x": "y"}}, "data": {"k": '"v"\\'}}
    kv = stored(cm)
    assert item(kv) == strategy.decode(kv, CM)
    assert item(kv)["metadata"]["resourceVersion"] == "7"


def test_item_with_empty_metadata_or_metadata_first():
    for obj in ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
                {"metadata": {"name": "a"}, "apiVersion": "v1", "kind": "ConfigMap"},
                {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}}):
        kv = stored(obj)
        assert item(kv) == strategy.decode(kv, CM)


def test_item_whose_nested_metadata_comes_first_is_decoded():
    # A Deployment body sent with spec before metadata: the first "metadata" is the template's.
    deploy = {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}, "apiVersion": "apps/v1",
              "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"}}
    kv = stored(deploy, "/registry/apps/deployments/default/d")
    got = item(kv, DEPLOY)
    assert got == strategy.decode(kv, DEPLOY)
    assert got["metadata"]["resourceVersion"] == "7" and "resourceVersion" not in got["spec"]["template"]["metadata"]


def test_item_with_another_resource_version_inside_is_decoded():
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": "p", "resourceVersion": "3"}}
    kv = stored(event, "/registry/events/default/e")
    got = item(kv, EVENT)
    assert got == strategy.decode(kv, EVENT) and got["involvedObject"]["resourceVersion"] == "3"


def test_item_stored_in_another_form_is_decoded():
    # Written before orjson (json.dumps with spaces): not matched, decoded as before.
    kv = KeyValue("/registry/configmaps/default/a", json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                                "metadata": {"name": "a"}}).encode(), 3, 9)
    assert item(kv) == strategy.decode(kv, CM)


def test_list_response_is_a_kube_list():
    kvs = [stored({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}}, f"/registry/configmaps/d/{n}",
                  r) for r, n in ((4, "a"), (5, "b"))]
    body = json.loads(list_body.respond(CM, [(kv, None) for kv in kvs], {"resourceVersion": "5"}).body)
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert body["metadata"] == {"resourceVersion": "5"}
    assert body["items"] == [strategy.decode(kv, CM) for kv in kvs]
    assert json.loads(list_body.respond(CM, [], {"resourceVersion": "1"}).body)["items"] == []


def test_shared_decoding_gives_each_watcher_the_same_event():
    shared = SharedDecoding(size=4)
    def labelled(app: str) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"app": app}}}
    old, new = stored(labelled("x"), revision=5), stored(labelled("y"), revision=6)
    event = WatchEvent("PUT", new, old)
    want_x = _Filter(CM, parse_label_selector("app=x"), parse_field_selector(None, "ConfigMap"), None)
    want_all = _Filter(CM, parse_label_selector(None), parse_field_selector(None, "ConfigMap"), None)
    # Selector transitions as without sharing: the object leaves app=x, stays in "everything".
    assert translate(event, want_x, shared) == translate(event, want_x) == ("DELETED", strategy.decode(new, CM))
    assert translate(event, want_all, shared) == ("MODIFIED", strategy.decode(new, CM))
    assert translate(event, want_all, shared)[1] is translate(event, want_x, shared)[1]  # decoded once
    line = shared.line("MODIFIED", new, CM, translate(event, want_all, shared)[1])
    assert jsonwire.loads(line) == {"type": "MODIFIED", "object": strategy.decode(new, CM)}
    for revision in range(10, 20):  # bounded: old entries go
        shared.decode(stored({"metadata": {"name": "a"}}, revision=revision), CM)
    assert len(shared._objects) <= 4


def test_shared_decoding_keeps_recent_events_within_a_byte_budget():
    shared = SharedDecoding(size=256, max_bytes=64 * 1024)
    large = [stored({"metadata": {"name": f"big-{r}"}, "data": {"blob": "x" * 30_000}}, revision=r) for r in (1, 2, 3)]
    for kv in large:
        obj = shared.decode(kv, CM)
        shared.line("ADDED", kv, CM, obj)
    assert len(shared._objects) == 2 and shared._objects.bytes <= 64 * 1024  # the oldest large one went
    assert len(shared._lines) == 2 and shared._lines.bytes <= 64 * 1024
    assert shared.decode(large[2], CM) is shared.decode(large[2], CM)  # still shared while it is kept
    huge = stored({"metadata": {"name": "huge"}, "data": {"blob": "x" * 100_000}}, revision=4)
    assert shared.decode(huge, CM) is shared.decode(huge, CM)  # larger than the budget: kept alone
    assert len(shared._objects) == 1
    small = stored({"metadata": {"name": "small"}}, revision=5)
    shared.decode(small, CM)
    assert len(shared._objects) == 1 and shared._objects.bytes == len(small.value)  # ...until the next one
