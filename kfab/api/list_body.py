"""A JSON list response written from the stored bytes, without decoding and re-encoding every item.

A stored value is the object's compact JSON without metadata.resourceVersion (kfab.api.strategy.encode), so
an item is the stored bytes with `"resourceVersion":"<mod_revision>",` put at the start of its metadata.
That is only done where it is certainly the object's own metadata: the value starts with `{`, at most its
apiVersion and kind, then `"metadata":{`; the apiVersion is the one served; and no `"resourceVersion"` key
is anywhere in it. Any other item is decoded and encoded as before (older or converted values, Events with
an involvedObject.resourceVersion).

A list of 12,000 ConfigMaps: 286 -> 90 ms of server CPU (bench/api.py `list all`), and none of the ~150,000
Python objects its decoded items were.
"""

from __future__ import annotations

import re

from aiohttp import web

from kfab.api import strategy
from kfab.objects import jsonwire
from kfab.objects.registry import ResourceType
from kfab.store.base import KeyValue

JSON = "application/json"

_HEAD = re.compile(rb'\{(?:"apiVersion":"(?P<version>[^"\\]*)",|"kind":"[^"\\]*",)*"metadata":\{')


def item_bytes(kv: KeyValue, rt: ResourceType, version: bytes, obj: dict | None = None) -> bytes:
    """The JSON of the stored object `kv` as a list item of `rt` (`version` is rt.api_version, encoded);
    `obj`: kv already decoded, if it was."""
    value = kv.value
    m = _HEAD.match(value)
    if m is not None and m.group("version") == version and b'"resourceVersion"' not in value:
        at = m.end()
        separator = b"" if value[at:at + 1] == b"}" else b","
        return b'%s"resourceVersion":"%d"%s%s' % (value[:at], kv.mod_revision, separator, value[at:])
    return jsonwire.dumps(obj if obj is not None else strategy.decode(kv, rt))


def respond(rt: ResourceType, selected: list[tuple[KeyValue, dict | None]], list_meta: dict) -> web.Response:
    """The `<Kind>List` of the selected (stored value, decoded object or None) pairs, as JSON."""
    version = rt.api_version.encode()
    head = b'{"kind":%s,"apiVersion":%s,"metadata":%s,"items":[' % (
        jsonwire.dumps(rt.list_kind), jsonwire.dumps(rt.api_version), jsonwire.dumps(list_meta))
    items = b",".join([item_bytes(kv, rt, version, obj) for kv, obj in selected])
    return web.Response(body=head + items + b"]}", content_type=JSON)
