"""Watch fan-out: one store watch on `/registry/` shared by every API watcher.

Without it each `?watch=true` request would hold its own store watch (a poller on SQLite, a gRPC stream on
etcd). The hub keeps one, hands each event to every subscriber whose prefix matches through a per-subscriber
buffer, and keeps the last `history` events so a watch resuming from a recent resourceVersion replays from
memory — the role kube-apiserver's watch cache plays.

- A subscriber that falls more than `max_backlog` events behind is dropped with `WatchTooSlow` (a
  RevisionCompacted: the API answers 410 Gone and the client relists); the hub never waits for anyone.
- A dropped subscriber first gets the events already in its buffer, then the error: they are valid events
  in order, and the error then says exactly where the stream stopped (the client's last resourceVersion).
- A resume from before the history window watches the store directly (RevisionCompacted if the store
  compacted it) and moves onto the hub once it has caught up into the window.
- Transient store errors restart the store watch from the last revision seen: no event lost or repeated.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import AsyncIterator

from kfab.store.base import RevisionCompacted, Store, WatchEvent

log = logging.getLogger(__name__)

ROOT = "/registry/"


class WatchTooSlow(RevisionCompacted):
    """The subscriber did not keep up; its events are gone from the buffer, so it must relist."""

    def __init__(self, requested: int, backlog: int):
        super().__init__(requested, requested)
        self.backlog = backlog

    def __str__(self) -> str:
        return (f"watch fell {self.backlog} events behind (next revision {self.requested + 1}); "
                "relist and watch again")


class _Subscriber:
    __slots__ = ("prefix", "after", "events", "wakeup", "error", "closed", "limit")

    def __init__(self, prefix: str, after: int, limit: int):
        self.prefix, self.after, self.limit = prefix, after, limit
        self.events: collections.deque[WatchEvent] = collections.deque()
        self.wakeup = asyncio.Event()
        self.error: BaseException | None = None
        self.closed = False

    def offer(self, event: WatchEvent) -> bool:
        self.events.append(event)
        self.wakeup.set()
        return len(self.events) <= self.limit

    def fail(self, error: BaseException) -> None:
        """End the subscription with `error` once the events already buffered have been read."""
        self.error = error
        self.wakeup.set()


# The history's budget in stored bytes (each event's value and previous value). Events hold whole objects, so
# 20,000 events alone could hold ~160 MB of pod writes (2 x 4 KB each), and a burst of large objects stayed
# until 20,000 more events had passed. A resume from before the window reads the store, which keeps every
# revision until compaction; this only decides what is served from memory.
HISTORY_BYTES = 8 * 1024 * 1024


def _event_bytes(event: WatchEvent) -> int:
    return len(event.kv.value) + (len(event.prev.value) if event.prev is not None else 0)


class WatchHub:
    def __init__(self, store: Store, history: int = 20000, max_backlog: int = 10000,
                 history_bytes: int = HISTORY_BYTES):
        self.store = store
        self.max_backlog = max_backlog
        self.revision = 0  # last revision the hub has dispatched (or started at)
        self.history_limit, self.history_bytes = history, history_bytes
        self._history: collections.deque[WatchEvent] = collections.deque()
        self._history_size = 0  # _event_bytes of every event in _history
        self._floor = 0  # the history holds every event with revision > _floor
        self._subscribers: set[_Subscriber] = set()
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self.revision = self._floor = await self.store.current_revision()
        self._task = asyncio.create_task(self._pump(), name="watchhub")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for sub in self._subscribers:
            sub.closed = True
            sub.wakeup.set()
        self._subscribers.clear()

    def subscribe(self, prefix: str, after_revision: int) -> "Subscription":
        """Events under `prefix` with revision > after_revision, in order (Store.watch semantics).

        Close the subscription (`aclose()`, or `async with`) when done so the hub stops buffering for it.
        """
        return Subscription(self, prefix, after_revision)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # -- internals -----------------------------------------------------------------------------
    def _attach(self, prefix: str, after: int) -> _Subscriber | None:
        """Register a subscriber served from history + live events, or None when history is too short.

        Runs without awaiting, so no event can slip between the history replay and the live feed."""
        if not self.running or after < self._floor:
            return None
        replay = []
        for event in reversed(self._history):
            if event.kv.mod_revision <= after:
                break
            if event.kv.key.startswith(prefix):
                replay.append(event)
        sub = _Subscriber(prefix, after, self.max_backlog + len(replay))
        sub.events.extend(reversed(replay))
        self._subscribers.add(sub)
        return sub

    def _detach(self, sub: _Subscriber) -> None:
        self._subscribers.discard(sub)

    def _dispatch(self, event: WatchEvent) -> None:
        revision = event.kv.mod_revision
        if revision <= self.revision:
            return  # already seen (a restarted store watch never repeats, but be safe)
        self._history.append(event)
        self._history_size += _event_bytes(event)
        while self._history and (len(self._history) > self.history_limit
                                 or self._history_size > self.history_bytes):
            dropped = self._history.popleft()
            self._history_size -= _event_bytes(dropped)
            self._floor = dropped.kv.mod_revision
        self.revision = revision
        key = event.kv.key
        overflowed = []
        for sub in self._subscribers:
            if revision > sub.after and key.startswith(sub.prefix) and not sub.offer(event):
                overflowed.append(sub)
        for sub in overflowed:
            self._subscribers.discard(sub)
            # Its buffer (this event last) is still delivered; after that the stream stops at `revision`.
            sub.fail(WatchTooSlow(revision, len(sub.events)))
            log.warning("watch on %s dropped: %d events behind", sub.prefix, len(sub.events))

    async def _pump(self) -> None:
        delay, lost = 0.05, False
        while True:
            try:
                if lost:
                    self.revision = self._floor = await self.store.current_revision()
                    lost = False
                async for event in self.store.watch(ROOT, self.revision):
                    self._dispatch(event)
                    delay = 0.05
            except asyncio.CancelledError:
                raise
            except RevisionCompacted as e:
                # The store forgot events we never saw (we were disconnected too long): every subscriber
                # must relist; start over from the store's current revision.
                log.warning("watch hub lost history (%s); subscribers must relist", e)
                for sub in self._subscribers:
                    sub.fail(RevisionCompacted(self.revision, e.compacted))
                self._subscribers.clear()
                self._history.clear()
                self._history_size = 0
                self._floor = 2**63  # until we know where the store is, resumes go to the store
                lost = True
                continue
            except Exception as e:  # transient: the store is unavailable, a connection dropped
                log.warning("watch hub: store watch failed (%s); retrying from revision %d", e, self.revision)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class Subscription:
    """An async iterator of WatchEvents for one watcher; see WatchHub.subscribe."""

    def __init__(self, hub: WatchHub, prefix: str, after_revision: int):
        self._hub, self._prefix, self._after = hub, prefix, after_revision
        self._sub = hub._attach(prefix, after_revision)
        self._direct: AsyncIterator[WatchEvent] | None = None
        self._done = False

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> WatchEvent:
        if self._done:
            raise StopAsyncIteration
        if self._sub is None:
            return await self._next_direct()
        sub = self._sub
        while True:
            if sub.events:
                event = sub.events.popleft()
                self._after = event.kv.mod_revision
                return event
            if sub.error is not None:
                self._done = True
                raise sub.error
            if sub.closed:
                self._done = True
                raise StopAsyncIteration
            sub.wakeup.clear()
            await sub.wakeup.wait()

    async def _next_direct(self) -> WatchEvent:
        if self._direct is None:
            self._direct = self._hub.store.watch(self._prefix, self._after).__aiter__()
        try:
            event = await self._direct.__anext__()
        except BaseException:
            self._done = True
            raise
        self._after = event.kv.mod_revision
        # Caught up into the hub's history: continue from the shared feed, drop the store watch.
        sub = self._hub._attach(self._prefix, self._after)
        if sub is not None:
            self._sub, direct, self._direct = sub, self._direct, None
            await _close(direct)
        return event

    async def aclose(self) -> None:
        self._done = True
        if self._sub is not None:
            self._hub._detach(self._sub)
        if self._direct is not None:
            direct, self._direct = self._direct, None
            await _close(direct)

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


async def _close(iterator) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
