"""GET of a collection: list with label/field selectors, `limit`/`continue` pages, resourceVersion semantics."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from kfab.api.decoding import quoted
from kfab.objects.errors import APIError, bad_request
from kfab.api.routing import ResourcePath
from kfab.api import list_body, strategy
from kfab.api.serialize import negotiate, render_list
from kfab.api.storage import ResourceStorage
from kfab.objects.registry import ResourceType
from kfab.objects.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from kfab.objects.meta import meta_of
from kfab.store.base import KeyValue


def encode_continue(revision: int, last_key: str) -> str:
    # The same token shape kube-apiserver uses: the list's revision and the key to start after.
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: it was not issued by this server's list") from None


def selectors(rt: ResourceType, query) -> tuple[LabelSelector, FieldSelector]:
    return parse_label_selector(query.get("labelSelector")), parse_field_selector(query.get("fieldSelector"), rt.kind)


def matches(obj: dict, labels: LabelSelector, fields: FieldSelector) -> bool:
    return labels.matches(meta_of(obj).get("labels")) and fields.matches(obj)


def _list_revision(query) -> tuple[int, int]:
    """(the revision to read at, 0 for now; the revision the answer must have reached)."""
    rv, match = query.get("resourceVersion", ""), query.get("resourceVersionMatch", "")
    if match and match not in ("Exact", "NotOlderThan"):
        raise bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", '
                          '"NotOlderThan"')
    if match and not rv:
        raise bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if rv in ("", "0") and match != "Exact":
        return 0, 0
    try:
        revision = int(rv)
    except ValueError:
        raise bad_request(f"invalid resourceVersion {quoted(rv)}: expected a number") from None
    if revision < 0:
        raise bad_request(f"invalid resourceVersion {quoted(rv)}: expected a number")
    # Exact N: the state at N. NotOlderThan N (or N without a match rule): now, once now has reached N.
    return (revision if match == "Exact" else 0), revision


class ListHandler:
    def __init__(self, storage: ResourceStorage):
        self.storage = storage

    async def list(self, request: web.Request, rp: ResourcePath) -> web.StreamResponse:
        selected, meta = await self.list_stored(rp, request.query)
        if negotiate(request) == "object":
            return list_body.respond(rp.rt, selected, meta)
        items = [obj if obj is not None else strategy.decode(kv, rp.rt) for kv, obj in selected]
        return render_list(request, rp.rt, items, meta)

    async def list_stored(self, rp: ResourcePath, query) -> tuple[list[tuple[KeyValue, dict | None]], dict]:
        """The page of the list: (stored value, its decoded object if it had to be decoded to be selected)
        pairs in key order, and the list's metadata. Only what a selector looks at is decoded, and no more
        than the page needs."""
        rt = rp.rt
        labels, fields = selectors(rt, query)
        limit_text = query.get("limit", "")
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise bad_request(f"limit must be an integer, got {limit_text!r}") from None
        token = query.get("continue", "")
        start = ""
        if token:
            revision, start = decode_continue(token)
            try:
                kvs, revision = await self.storage.list_stored(rt, rp.namespace, revision)
            except APIError as e:
                if e.code == 410:
                    raise APIError(410, "Expired", "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the continue "
                                   "parameter.") from None
                raise
        else:
            at, not_older_than = _list_revision(query)
            if not_older_than:
                await self.storage.wait_for_revision(not_older_than)
            kvs, revision = await self.storage.list_stored(rt, rp.namespace, at)
        name = rp.name
        filtered = name is not None or not labels.empty() or not fields.empty()
        selected: list[tuple[KeyValue, dict | None]] = []
        for kv in kvs:
            if start and kv.key < start:  # the store key of each object, as the continue token holds it
                continue
            if not filtered:
                selected.append((kv, None))
                continue
            obj = strategy.decode(kv, rt)
            if (name is None or obj["metadata"]["name"] == name) and matches(obj, labels, fields):
                selected.append((kv, obj))
                if 0 < limit < len(selected):
                    break  # one past the page says there is more
        meta: dict = {"resourceVersion": str(revision)}
        if limit > 0 and len(selected) > limit:
            page = selected[:limit]
            meta["continue"] = encode_continue(revision, page[-1][0].key)
            if not filtered:
                meta["remainingItemCount"] = len(selected) - limit
            selected = page
        return selected, meta
