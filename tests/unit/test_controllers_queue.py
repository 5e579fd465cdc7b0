"""The controllers' work queue and informer cache: de-duplication, one worker per key, backoff, and the cache's
handling of watch events, its own writes and relists."""

from __future__ import annotations

import asyncio

import pytest

from kfab.machinery.controller import Controller, ControllerContext
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import Informer, InformerFactory, by_owner_uid
from kfab.machinery.workqueue import ShutDown, WorkQueue
from kfab.objects.registry import REGISTRY


def run(coro):
    return asyncio.run(coro)


def test_a_key_added_many_times_is_queued_once():
    async def main():
        q = WorkQueue()
        for _ in range(5):
            q.add("ns/a")
        q.add("ns/b")
        assert len(q) == 2
        assert await q.get() == "ns/a"
        assert await q.get() == "ns/b"
    run(main())


def test_a_key_added_while_processing_comes_back_only_after_done():
    async def main():
        q = WorkQueue()
        q.add("k")
        key = await q.get()
        q.add("k")
        q.add("k")
        assert len(q) == 0  # not handed out twice at once
        q.done(key)
        assert len(q) == 1 and await q.get() == "k"
        q.done("k")
        assert len(q) == 0
    run(main())


def test_backoff_grows_exponentially_and_forget_resets_it():
    q = WorkQueue(base_delay=0.01, max_delay=0.1)
    delays = []
    for _ in range(6):
        delays.append(q.backoff("k"))
        q._failures["k"] = q.failures("k") + 1  # what add_rate_limited records
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.1, 0.1]
    q.forget("k")
    assert q.backoff("k") == 0.01


def test_add_after_and_rate_limited_adds_arrive_later():
    async def main():
        q = WorkQueue(base_delay=0.05)
        loop = asyncio.get_running_loop()
        start = loop.time()
        q.add_after("late", 0.1)
        q.add_rate_limited("retry")
        assert await q.get() == "retry"
        assert await q.get() == "late"
        assert loop.time() - start >= 0.09
        assert q.failures("retry") == 1
    run(main())


def test_shutdown_releases_waiting_workers():
    async def main():
        q = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        await q.shutdown()
        with pytest.raises(ShutDown):
            await waiter
    run(main())


class Recording(Controller):
    name = "recording"
    workers = 4

    def setup(self) -> None:
        self.active: set[str] = set()
        self.overlaps = 0
        self.calls: list[str] = []
        self.fail_once = {"flaky"}

    async def reconcile(self, key: str):
        if key in self.active:
            self.overlaps += 1
        self.active.add(key)
        await asyncio.sleep(0.01)
        self.calls.append(key)
        self.active.discard(key)
        if key in self.fail_once:
            self.fail_once.discard(key)
            raise RuntimeError("transient")
        return None


def test_controller_workers_never_reconcile_one_key_twice_at_once_and_retry_errors():
    async def main():
        ctx = ControllerContext(None, InformerFactory(None), EventRecorder(None))
        c = Recording(ctx)
        task = asyncio.create_task(c.run())
        for _ in range(20):
            for key in ("a", "b", "flaky"):
                c.enqueue(key)
            await asyncio.sleep(0.003)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not c.queue._dirty and not c.queue._processing and not c.queue._timers:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert c.overlaps == 0
        assert c.calls.count("flaky") >= 2  # failed once, retried
        assert c.queue.failures("flaky") == 0  # success forgets the failures
    run(main())


def obj(name: str, rv: int, ns: str = "default", owner: str | None = None, **extra) -> dict:
    meta = {"name": name, "namespace": ns, "resourceVersion": str(rv), "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta, **extra}


def informer() -> tuple[Informer, list]:
    inf = Informer(None, REGISTRY.by_kind("v1", "Pod"))
    seen: list = []
    inf.add_handlers(lambda o: seen.append(("add", o["metadata"]["name"])),
                     lambda old, new: seen.append(("update", new["metadata"]["name"])),
                     lambda o: seen.append(("delete", o["metadata"]["name"])))
    return inf, seen


def test_informer_cache_follows_events_and_indexes_owners():
    inf, seen = informer()
    inf.add_index("owner", by_owner_uid)
    inf._apply_event("ADDED", obj("a", 5, owner="rs1"))
    inf._apply_event("ADDED", obj("b", 6, owner="rs1"))
    inf._apply_event("MODIFIED", obj("a", 7, owner="rs2"))
    assert [o["metadata"]["name"] for o in inf.by_index("owner", "rs1")] == ["b"]
    assert [o["metadata"]["name"] for o in inf.by_index("owner", "rs2")] == ["a"]
    inf._apply_event("DELETED", obj("b", 8, owner="rs1"))
    assert inf.by_index("owner", "rs1") == [] and inf.get("default/b") is None
    assert seen == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")]
    assert [o["metadata"]["name"] for o in inf.list("default")] == ["a"]


def test_own_writes_are_not_rolled_back_by_older_events():
    inf, _ = informer()
    inf._apply_event("ADDED", obj("a", 5))
    inf.remember_write(obj("a", 9, status={"phase": "Running"}))
    inf._apply_event("MODIFIED", obj("a", 7))  # older than what we wrote
    assert inf.get("default/a")["metadata"]["resourceVersion"] == "9"
    inf.remember_delete(obj("a", 9))
    inf._apply_event("MODIFIED", obj("a", 9))
    assert inf.get("default/a") is None
    inf._apply_event("MODIFIED", obj("a", 12))  # newer than our delete: somebody recreated it
    assert inf.get("default/a")["metadata"]["resourceVersion"] == "12"


def test_relist_reports_differences_as_events():
    inf, seen = informer()
    inf._replace([obj("a", 1), obj("b", 2)])
    seen.clear()
    inf._replace([obj("a", 1), obj("c", 3)])  # b vanished while the watch was down, c appeared
    assert sorted(seen) == [("add", "c"), ("delete", "b")]
