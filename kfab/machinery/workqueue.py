"""A work queue of object keys, as client-go's rate-limited workqueue.

- A key waiting in the queue is there once, however many times it is added (per-key de-duplication).
- A key being worked on is never handed to a second worker; if it is added meanwhile, it is queued again
  when the first worker calls done().
- add_rate_limited() waits an exponentially growing delay per key (base * 2^failures, capped), forget()
  resets it after a success.
"""

from __future__ import annotations

import asyncio
import collections


class ShutDown(Exception):
    """The queue was shut down: workers stop."""


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 60.0):
        self.base_delay, self.max_delay = base_delay, max_delay
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()        # waiting to be processed
        self._processing: set[str] = set()   # handed to a worker, not done yet
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Condition()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._wakeup:
                self._wakeup.notify()
        asyncio.get_running_loop().create_task(notify())

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; an earlier pending add_after of the same key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None:
            if existing.when() <= when:
                return
            existing.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)
        self._timers[key] = loop.call_at(when, fire)

    def backoff(self, key: str) -> float:
        failures = self._failures.get(key, 0)
        return min(self.base_delay * (2 ** failures), self.max_delay)

    def add_rate_limited(self, key: str) -> None:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        async with self._wakeup:
            while not self._queue:
                if self._shutting_down:
                    raise ShutDown()
                await self._wakeup.wait()
            key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    async def shutdown(self) -> None:
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        async with self._wakeup:
            self._wakeup.notify_all()
