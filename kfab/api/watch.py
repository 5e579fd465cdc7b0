"""`?watch=true`: a chunked stream of `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}` lines.

resourceVersion semantics, as kube-apiserver:
  unset or "0"  synthetic ADDED events for the current state, then changes after it
  N             changes after revision N; ERROR Status 410 Expired when N is compacted
  sendInitialEvents=true  the current state first, then a BOOKMARK annotated k8s.io/initial-events-end
With selectors an object that starts matching is ADDED and one that stops matching is DELETED, so a
watcher's view stays exactly "the objects matching the selector".
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Callable

from aiohttp import web

from kfab.api import strategy
from kfab.api.collection import selectors
from kfab.api.decoding import quoted
from kfab.objects import jsonwire
from kfab.objects.errors import APIError, bad_request, gone
from kfab.api.routing import ResourcePath
from kfab.api.serialize import negotiate, partial_metadata, to_table
from kfab.api.storage import ResourceStorage, expired
from kfab.api.watchhub import WatchTooSlow
from kfab.objects.registry import ResourceType
from kfab.objects.selectors import FieldSelector, LabelSelector
from kfab.store.base import KeyValue, RevisionCompacted, StoreUnavailable, WatchEvent
from kfab.objects.meta import meta_of

log = logging.getLogger(__name__)

WatchSource = Callable[[str, int], AsyncIterator[WatchEvent]]

# kube-apiserver ends watches after a random 30-60 min so clients re-establish them; one fixed value here.
DEFAULT_TIMEOUT = 1800
BOOKMARK_INTERVAL = 30.0
# How often an idle watch looks whether its client is still connected (aiohttp does not cancel a handler
# whose client left; Go's request context does): abandoned watches end within this many seconds.
CLIENT_CHECK_INTERVAL = 2.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
WRITE_BATCH = 256  # most events written to a watch stream at once
# What SharedDecoding keeps of recent events, in stored bytes (objects) and in encoded bytes (lines), each.
# Watchers of one event handle it within milliseconds of each other, so a few MB is hundreds of pod events.
SHARED_DECODING_BYTES = 4 * 1024 * 1024


class _Filter:
    def __init__(self, rt: ResourceType, labels: LabelSelector, fields: FieldSelector, name: str | None):
        self.rt, self.labels, self.fields, self.name = rt, labels, fields, name

    def __call__(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        meta = meta_of(obj)
        if self.name is not None and meta.get("name") != self.name:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)


class SharedDecoding:
    """Decoded objects and encoded event lines shared by every watch of one API server.

    The watch hub hands the same event to every watcher of its prefix, and decoding a pod costs far more than
    filtering it: each event is decoded (and, for plain JSON watchers, encoded) once, not once per watcher.
    What a stored value decodes to is fixed by its key, its revision and the version it is shown in, so those
    are the cache key. Watchers read the objects and never change them. Only the last `size` events are kept,
    and no more than `max_bytes` of them (measured as stored bytes and line bytes): every watcher handles an
    event at about the same time, and one that lags just decodes for itself. Without the byte bound 256
    events of 512 KiB ConfigMaps kept ~250 MB (objects and lines) until 256 small events had pushed them out.
    """

    def __init__(self, size: int = 256, max_bytes: int = SHARED_DECODING_BYTES):
        self._objects = _BoundedCache(size, max_bytes)
        self._lines = _BoundedCache(size, max_bytes)

    def decode(self, kv: KeyValue, rt: ResourceType) -> dict:
        key = (kv.mod_revision, kv.key, rt.api_version)
        obj = self._objects.get(key)
        if obj is None:
            obj = self._objects.put(key, strategy.decode(kv, rt), len(kv.value))
        return obj

    def line(self, type_: str, kv: KeyValue, rt: ResourceType, obj: dict) -> bytes:
        """The watch event `{"type": type_, "object": obj}` as one JSON line; obj is decode(kv, rt)."""
        key = (type_, kv.mod_revision, kv.key, rt.api_version)
        line = self._lines.get(key)
        if line is None:
            line = event_line(type_, obj)
            self._lines.put(key, line, len(line))
        return line


class _BoundedCache:
    """The newest entries, at most `size` of them and `max_bytes` by their stated sizes (oldest out first).
    An entry larger than the whole budget is kept alone, until the next one comes."""

    __slots__ = ("size", "max_bytes", "bytes", "_entries")

    def __init__(self, size: int, max_bytes: int):
        self.size, self.max_bytes, self.bytes = size, max_bytes, 0
        self._entries: dict[tuple, tuple[object, int]] = {}  # insertion order = age

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple):
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: tuple, value, nbytes: int):
        entries = self._entries
        while entries and (len(entries) >= self.size or self.bytes + nbytes > self.max_bytes):
            self.bytes -= entries.pop(next(iter(entries)))[1]
        entries[key] = (value, nbytes)
        self.bytes += nbytes
        return value


def event_line(type_: str, obj: dict) -> bytes:
    return jsonwire.dumps({"type": type_, "object": obj}) + b"\n"


def translate(event: WatchEvent, want: _Filter, shared: SharedDecoding | None = None) -> tuple[str, dict] | None:
    """A store event -> the watch event this watcher sees (or None), with selector transitions."""
    decode = shared.decode if shared is not None else strategy.decode
    obj = decode(event.kv, want.rt)  # on DELETE: the last value, resourceVersion = the delete's revision
    if event.type == "DELETE":
        return ("DELETED", obj) if want(obj) else None
    old = decode(event.prev, want.rt) if event.prev is not None else None
    now_matches, was_matching = want(obj), want(old)
    if now_matches and was_matching:
        return "MODIFIED", obj
    if now_matches:
        return "ADDED", obj
    if was_matching:
        return "DELETED", obj
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class WatchHandler:
    def __init__(self, storage: ResourceStorage, source: WatchSource, bookmark_interval: float = BOOKMARK_INTERVAL):
        self.storage = storage
        self.source = source
        self.bookmark_interval = bookmark_interval
        self.shared = SharedDecoding()

    async def watch(self, request: web.Request, rp: ResourcePath) -> web.StreamResponse:
        rt, query = rp.rt, request.query
        labels, fields = selectors(rt, query)
        want = _Filter(rt, labels, fields, rp.name or fields.exact_name())
        form = negotiate(request)
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        timeout = self._timeout(query)
        rv_text = query.get("resourceVersion", "")
        send_initial = _truthy(query.get("sendInitialEvents"))
        if "sendInitialEvents" in query and query.get("resourceVersionMatch") != "NotOlderThan":
            raise bad_request("sendInitialEvents is forbidden unless resourceVersionMatch is NotOlderThan")
        initial: list[dict] = []
        if rv_text in ("", "0") or send_initial:
            items, start = await self.storage.list(rt, rp.namespace)
            initial = [o for o in items if want(o)]
        else:
            try:
                start = int(rv_text)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {quoted(rv_text)}: expected a number") from None
            if start < 0:
                raise bad_request(f"invalid resourceVersion {quoted(rv_text)}: expected a number")

        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        stream = _Stream(resp, rt, form, request.query.get("includeObject", "Metadata"), self.shared)
        try:
            if not initial:
                try:  # as kube-apiserver's watch cache: a revision not reached yet is waited for, then an ERROR
                    await self.storage.wait_for_revision(start)
                except APIError as e:
                    await stream.status_error(e.status())
                    return resp
            for obj in initial:
                await stream.send("ADDED", obj)
            if send_initial and bookmarks:
                await stream.bookmark(start, {INITIAL_EVENTS_END: "true"})
            await self._follow(stream, rt.store_prefix(rp.namespace), start, want, bookmarks, timeout,
                               lambda: request.transport is None or request.transport.is_closing())
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away
        return resp

    @staticmethod
    def _timeout(query) -> float:
        text = query.get("timeoutSeconds", "")
        if not text:
            return DEFAULT_TIMEOUT
        try:
            value = int(text)
        except ValueError:
            raise bad_request(f"timeoutSeconds must be an integer, got {text!r}") from None
        return value if value > 0 else DEFAULT_TIMEOUT

    async def _follow(self, stream: "_Stream", prefix: str, start: int, want: _Filter, bookmarks: bool,
                      timeout: float, client_gone: Callable[[], bool] = lambda: False) -> None:
        """Pump store events into the response until the timeout, the client leaving, or an error."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        pump = asyncio.create_task(self._pump(prefix, start, queue))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval  # after this long without an event
        last_rev = start
        try:
            while True:
                now = loop.time()
                remaining = deadline - now
                if remaining <= 0:
                    break
                try:
                    item = queue.get_nowait()  # under load events are waiting: no timer per event
                except asyncio.QueueEmpty:
                    try:
                        item = await asyncio.wait_for(queue.get(), max(0.0, min(remaining, next_bookmark - now,
                                                                                CLIENT_CHECK_INTERVAL)))
                    except asyncio.TimeoutError:
                        if client_gone():
                            return
                        if loop.time() >= next_bookmark:
                            next_bookmark = loop.time() + self.bookmark_interval
                            if bookmarks and deadline - loop.time() > 0:
                                await stream.bookmark(last_rev)
                        continue
                next_bookmark = loop.time() + self.bookmark_interval
                # Every event already waiting goes out in one write (one TLS record, one send) rather than one each.
                items = [item]
                while len(items) < WRITE_BATCH and not queue.empty():
                    items.append(queue.get_nowait())
                lines = []
                for item in items:
                    if isinstance(item, Exception):
                        await stream.write(lines)
                        await stream.error(item)
                        return
                    last_rev = item.kv.mod_revision
                    change = translate(item, want, self.shared)
                    if change is not None:
                        lines.append(stream.line(item.kv, *change))
                await stream.write(lines)
            if bookmarks:
                await stream.bookmark(last_rev)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, prefix: str, start: int, queue: asyncio.Queue) -> None:
        events = self.source(prefix, start)
        try:
            async for event in events:
                await queue.put(event)
        except (RevisionCompacted, StoreUnavailable) as e:
            await queue.put(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any store failure ends this watch with an ERROR event
            log.exception("watch on %s failed", prefix)
            await queue.put(e)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


class _Stream:
    """Writes watch events in the form the client asked for (objects, Table rows, or metadata only)."""

    def __init__(self, resp: web.StreamResponse, rt: ResourceType, form: str, include_object: str,
                 shared: SharedDecoding):
        self.resp, self.rt, self.form, self.include_object, self.shared = resp, rt, form, include_object, shared

    async def _write(self, event: dict) -> None:
        await self.resp.write(jsonwire.dumps(event) + b"\n")

    def _shown(self, obj: dict) -> dict:
        """The object in the form the client asked for."""
        if self.form == "table":
            return to_table(self.rt, [obj], include_object=self.include_object,
                            list_meta={"resourceVersion": obj["metadata"]["resourceVersion"]})
        if self.form == "partial":
            return partial_metadata(obj)
        return obj

    def line(self, kv: KeyValue, type_: str, obj: dict) -> bytes:
        """The event's line; obj is kv decoded (a plain object's line is encoded once for every watcher)."""
        if self.form in ("table", "partial"):
            return event_line(type_, self._shown(obj))
        return self.shared.line(type_, kv, self.rt, obj)

    async def write(self, lines: list[bytes]) -> None:
        if lines:
            await self.resp.write(b"".join(lines))

    async def send(self, type_: str, obj: dict) -> None:
        await self._write({"type": type_, "object": self._shown(obj)})

    async def bookmark(self, revision: int, annotations: dict | None = None) -> None:
        meta: dict = {"resourceVersion": str(revision)}
        if annotations:
            meta["annotations"] = annotations
        await self._write({"type": "BOOKMARK", "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
                                                          "metadata": meta}})

    async def status_error(self, status: dict) -> None:
        await self._write({"type": "ERROR", "object": status})

    async def error(self, error: Exception) -> None:
        if isinstance(error, WatchTooSlow):  # Expired too: the client relists, as after a compaction
            status = gone(str(error)).status()
        elif isinstance(error, RevisionCompacted):
            status = expired(error).status()
        elif isinstance(error, StoreUnavailable):
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": f"the state store is unavailable: {error}", "reason": "ServiceUnavailable",
                      "code": 503}
        else:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": f"watch failed: {error}", "reason": "InternalError", "code": 500}
        await self._write({"type": "ERROR", "object": status})
