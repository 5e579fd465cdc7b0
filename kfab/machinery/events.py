"""core/v1 Events for what controllers do, so `kubectl describe` / `kubectl get events` tell the story.

As client-go's event recorder: writing is fire-and-forget from a background task (a controller never waits
for, or fails because of, an Event); the same (object, type, reason, message, component) seen again bumps
`count` and `lastTimestamp` of the existing Event instead of creating another; and client-go's spam filter
applies: per object and component a burst of 25 events, then one more every 5 minutes (a ReplicaSet creating
1,000 pods records 25 SuccessfulCreate events, not 1,000 writes competing with the pods themselves).
"""

from __future__ import annotations

import asyncio
import logging
import time

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import meta_of

log = logging.getLogger(__name__)

EVENT = rt_of("Event")
QUEUE_LIMIT = 5000  # beyond this, events are dropped rather than slowing controllers down
SPAM_BURST = 25      # client-go EventSourceObjectSpamFilter: burst 25, refill one token per 300 s
SPAM_REFILL = 1 / 300
# What close() waits for the queued events to be written: a controller-manager that loses its Lease stops its
# controllers at once, and the Events of what they just did (a ScalingReplicaSet) must not go with them.
FLUSH_ON_CLOSE = 2.0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EventRecorder:
    def __init__(self, client: Client | None, host: str = ""):
        self.client = client
        self.host = host
        self._queue: asyncio.Queue | None = None
        self._seen: dict[tuple, tuple[str, str, int]] = {}  # aggregation key -> (namespace, name, count)
        self._task: asyncio.Task | None = None
        self._tokens: dict[tuple, tuple[float, float]] = {}  # (uid, component) -> (tokens, last refill time)

    def _allowed(self, uid: str | None, component: str) -> bool:
        now = time.monotonic()
        tokens, last = self._tokens.get((uid, component), (SPAM_BURST, now))
        tokens = min(SPAM_BURST, tokens + (now - last) * SPAM_REFILL)
        if tokens < 1:
            self._tokens[(uid, component)] = (tokens, now)
            return False
        if len(self._tokens) > 10000:
            self._tokens.clear()
        self._tokens[(uid, component)] = (tokens - 1, now)
        return True

    def record(self, obj: dict, type_: str, reason: str, message: str, component: str) -> None:
        if self.client is None or not self._allowed(meta_of(obj).get("uid"), component):
            return
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_LIMIT)
            self._task = asyncio.get_running_loop().create_task(self._writer(), name="event-recorder")
        try:
            self._queue.put_nowait((obj, type_, reason, message, component, _now()))
        except asyncio.QueueFull:
            log.debug("event queue full: dropped %s %s", reason, message)

    async def _writer(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(*item)
            except Exception as e:  # noqa: BLE001 - events are best effort
                log.debug("event not written: %s", e)
            finally:
                self._queue.task_done()

    async def _write(self, obj: dict, type_: str, reason: str, message: str, component: str, when: str) -> None:
        meta = meta_of(obj)
        namespace = meta.get("namespace") or "default"
        agg = (meta.get("uid"), type_, reason, message, component)
        seen = self._seen.get(agg)
        if seen is not None:
            ns, name, count = seen
            try:
                await self.client.patch(EVENT, ns, name, {"count": count + 1, "lastTimestamp": when})
                self._seen[agg] = (ns, name, count + 1)
                return
            except APIStatusError as e:
                if not e.not_found:
                    raise
        name = f"{meta.get('name', 'unknown')}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in (("apiVersion", obj.get("apiVersion")), ("kind", obj.get("kind")),
                                                 ("namespace", meta.get("namespace")), ("name", meta.get("name")),
                                                 ("uid", meta.get("uid")),
                                                 ("resourceVersion", meta.get("resourceVersion"))) if v},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": when, "lastTimestamp": when, "count": 1,
            "reportingComponent": component, "reportingInstance": self.host or component,
        }
        await self.client.create(EVENT, event, namespace)
        if len(self._seen) > 10000:
            self._seen.clear()
        self._seen[agg] = (namespace, name, 1)

    async def close(self) -> None:
        """Write what is queued (for at most FLUSH_ON_CLOSE seconds), then stop the writer."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), FLUSH_ON_CLOSE)
            except asyncio.TimeoutError:
                log.debug("closing with %d events unwritten", self._queue.qsize())
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
