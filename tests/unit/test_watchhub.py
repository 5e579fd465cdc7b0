"""Watch fan-out over the real SQLite store: every subscriber sees every event once, in order."""

import asyncio
import json

import pytest

from kfab.api.watchhub import WatchHub, WatchTooSlow
from kfab.store import RevisionCompacted, StoreUnavailable, open_store

DEADLINE = 30  # seconds; a hung watch fails the test instead of blocking the run


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE))


async def opened(tmp_path, **hub_args):
    store = await open_store(f"sqlite:///{tmp_path}/state.db")
    hub = WatchHub(store, **hub_args)
    await hub.start()
    return store, hub


async def closed(store, hub):
    await hub.close()
    await store.close()


def pod(i):
    return json.dumps({"kind": "Pod", "metadata": {"name": f"p{i}"}}).encode()


async def collect(subscription, count):
    out = []
    async for event in subscription:
        out.append((event.type, event.kv.key, event.kv.mod_revision))
        if len(out) == count:
            break
    await subscription.aclose()
    return out


async def write_mix(store, n, prefix="/registry/pods/default/"):
    """Creates, updates and deletes; returns what a watcher must see, in order."""
    expected = []
    for i in range(n):
        key = f"{prefix}p{i % 7}"
        current = await store.get(key)
        if current is None:
            kv = await store.create(key, pod(i))
            expected.append(("PUT", key, kv.mod_revision))
        elif i % 3 == 0:
            kv = await store.delete(key)
            expected.append(("DELETE", key, kv.mod_revision))
        else:
            kv = await store.update(key, pod(i))
            expected.append(("PUT", key, kv.mod_revision))
    return expected


def test_many_concurrent_subscribers_each_see_every_event_in_order(tmp_path):
    async def main():
        store, hub = await opened(tmp_path)
        start = await store.current_revision()
        subs = [hub.subscribe("/registry/", start) for _ in range(120)]
        readers = [asyncio.create_task(collect(s, 60)) for s in subs]
        expected = await write_mix(store, 60)
        results = await asyncio.gather(*readers)
        assert all(r == expected for r in results)
        assert hub.subscriber_count == 0, "closed subscriptions must leave the hub"
        await closed(store, hub)
    run(main())


def test_resume_from_a_past_revision_replays_from_history_then_goes_live(tmp_path):
    async def main():
        store, hub = await opened(tmp_path)
        first = await write_mix(store, 10)
        while hub.revision < first[-1][2]:
            await asyncio.sleep(0.01)
        sub = hub.subscribe("/registry/pods/", first[4][2])
        assert hub.subscriber_count == 1, "a recent resume is served by the hub, not a new store watch"
        reader = asyncio.create_task(collect(sub, 10))
        more = await write_mix(store, 5, prefix="/registry/pods/other/")
        assert await reader == first[5:] + more
        await closed(store, hub)
    run(main())


def test_resume_older_than_history_reads_the_store_then_joins_the_hub(tmp_path):
    async def main():
        store, hub = await opened(tmp_path, history=5)
        first = await write_mix(store, 20)
        while hub.revision < first[-1][2]:
            await asyncio.sleep(0.01)
        sub = hub.subscribe("/registry/pods/", first[1][2])
        assert hub.subscriber_count == 0  # too old for the window: watching the store directly
        got = [(e.type, e.kv.key, e.kv.mod_revision) for e in [await sub.__anext__() for _ in range(18)]]
        assert got == first[2:]
        assert hub.subscriber_count == 1, "caught up into the window: moved onto the shared feed"
        more = await write_mix(store, 3, prefix="/registry/pods/x/")
        assert await collect(sub, 3) == more
        await closed(store, hub)
    run(main())


def test_history_is_bounded_by_bytes_and_older_resumes_read_the_store(tmp_path):
    async def main():
        store, hub = await opened(tmp_path, history_bytes=100_000)
        big = json.dumps({"kind": "ConfigMap", "data": {"blob": "x" * 30_000}}).encode()
        written = []
        for i in range(6):  # create + update: 30 KB and 60 KB (value and previous value) of history each
            key = f"/registry/configmaps/default/c{i}"
            written.append(("PUT", key, (await store.create(key, big)).mod_revision))
            written.append(("PUT", key, (await store.update(key, big)).mod_revision))
        while hub.revision < written[-1][2]:
            await asyncio.sleep(0.01)
        assert hub._history_size <= 100_000 and len(hub._history) < len(written)
        sub = hub.subscribe("/registry/configmaps/", written[0][2])
        assert hub.subscriber_count == 0  # before the window: watching the store directly
        assert await collect(sub, len(written) - 1) == written[1:]
        await closed(store, hub)
    run(main())


def test_resume_from_a_compacted_revision_raises_revision_compacted(tmp_path):
    async def main():
        store, hub = await opened(tmp_path, history=3)
        events = await write_mix(store, 12)
        await store.compact(events[8][2])
        sub = hub.subscribe("/registry/", events[2][2])
        with pytest.raises(RevisionCompacted):
            await sub.__anext__()
        await sub.aclose()
        await closed(store, hub)
    run(main())


def test_a_slow_subscriber_is_dropped_without_stalling_the_others(tmp_path):
    async def main():
        store, hub = await opened(tmp_path, max_backlog=10)
        start = await store.current_revision()
        slow = hub.subscribe("/registry/", start)  # never reads
        fast_seen = []

        async def fast_reader():
            async for event in hub.subscribe("/registry/", start):
                fast_seen.append((event.type, event.kv.key, event.kv.mod_revision))

        reader = asyncio.create_task(fast_reader())
        expected = []
        for batch in range(8):  # batches smaller than the backlog limit, so only the slow one overflows
            expected += await write_mix(store, 5, prefix=f"/registry/pods/b{batch}/")
            while len(fast_seen) < len(expected):
                await asyncio.sleep(0.005)
        assert fast_seen == expected
        # What it had buffered when it was dropped still arrives, in order, then the error saying where
        # the stream stopped.
        buffered = []
        with pytest.raises(WatchTooSlow) as e:
            async for event in slow:
                buffered.append((event.type, event.kv.key, event.kv.mod_revision))
        assert buffered == expected[:len(buffered)] and len(buffered) == 11  # max_backlog + the one too many
        assert isinstance(e.value, RevisionCompacted), "the API turns it into 410 Gone"
        assert "relist" in str(e.value) and f"next revision {buffered[-1][2] + 1}" in str(e.value)
        await slow.aclose()
        reader.cancel()
        await closed(store, hub)
    run(main())


def test_subscribers_only_see_their_prefix(tmp_path):
    async def main():
        store, hub = await opened(tmp_path)
        start = await store.current_revision()
        pods = asyncio.create_task(collect(hub.subscribe("/registry/pods/default/", start), 4))
        cms = asyncio.create_task(collect(hub.subscribe("/registry/configmaps/", start), 2))
        expected_pods, expected_cms = [], []
        for i in range(4):
            kv = await store.create(f"/registry/pods/default/p{i}", pod(i))
            expected_pods.append(("PUT", kv.key, kv.mod_revision))
            await store.create(f"/registry/pods/kube-system/p{i}", pod(i))
            if i < 2:
                kv = await store.create(f"/registry/configmaps/default/c{i}", b"{}")
                expected_cms.append(("PUT", kv.key, kv.mod_revision))
        assert await pods == expected_pods and await cms == expected_cms
        await closed(store, hub)
    run(main())


class FlakyWatchStore:
    """The real SQLite store whose watch breaks a few times mid-stream, as a dropped etcd connection would."""

    def __init__(self, store, breaks):
        self._store, self.breaks = store, breaks

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def watch(self, prefix, after_revision):
        seen = 0
        async for event in self._store.watch(prefix, after_revision):
            yield event
            seen += 1
            if self.breaks and seen == 3:
                self.breaks -= 1
                raise StoreUnavailable("connection reset")


def test_store_watch_restarts_after_transient_errors_without_losing_or_repeating(tmp_path):
    async def main():
        real = await open_store(f"sqlite:///{tmp_path}/state.db")
        hub = WatchHub(FlakyWatchStore(real, breaks=3))
        await hub.start()
        start = await real.current_revision()
        reader = asyncio.create_task(collect(hub.subscribe("/registry/", start), 30))
        expected = await write_mix(real, 30)
        assert await reader == expected
        await closed(real, hub)
    run(main())


def test_closing_the_hub_ends_subscriptions(tmp_path):
    async def main():
        store, hub = await opened(tmp_path)
        sub = hub.subscribe("/registry/", await store.current_revision())
        waiting = asyncio.create_task(sub.__anext__())
        await asyncio.sleep(0)
        await hub.close()
        with pytest.raises(StopAsyncIteration):
            await waiting
        await store.close()
    run(main())


class ForgetfulWatchStore(FlakyWatchStore):
    """The real store, but its watch breaks once and the revision to resume from is already compacted."""

    async def watch(self, prefix, after_revision):
        seen = 0
        async for event in self._store.watch(prefix, after_revision):
            if self.breaks and seen == 2:
                self.breaks -= 1
                raise RevisionCompacted(after_revision, event.kv.mod_revision)
            yield event
            seen += 1


async def forgetful_hub(tmp_path):
    """A hub over the real store whose watch loses history once: (store, hub, a subscriber from now)."""
    real = await open_store(f"sqlite:///{tmp_path}/state.db")
    hub = WatchHub(ForgetfulWatchStore(real, breaks=1))
    await hub.start()
    return real, hub, hub.subscribe("/registry/", await real.current_revision())


def test_when_the_hub_loses_history_subscribers_must_relist_and_new_ones_work(tmp_path):
    async def main():
        real, hub, before = await forgetful_hub(tmp_path)
        got = []

        async def follow():
            async for event in before:
                got.append((event.type, event.kv.key, event.kv.mod_revision))

        # The watcher reads while the writes happen, as an API watch does (not only after they are done).
        follower = asyncio.create_task(follow())
        first = await write_mix(real, 3)
        with pytest.raises(RevisionCompacted):
            await follower
        assert got == first[:2], "events before the loss arrive, then the subscriber is told to relist"
        after = hub.subscribe("/registry/", await real.current_revision())
        expected = await write_mix(real, 4, prefix="/registry/pods/again/")
        assert await collect(after, 4) == expected
        await closed(real, hub)
    run(main())


def test_a_subscriber_that_had_not_read_yet_gets_its_buffered_events_before_relisting(tmp_path):
    async def main():
        real, hub, idle = await forgetful_hub(tmp_path)
        first = await write_mix(real, 3)
        while hub.subscriber_count:  # the hub lost its history and dropped the subscriber, unread
            await asyncio.sleep(0.005)
        got = []
        with pytest.raises(RevisionCompacted):
            async for event in idle:
                got.append((event.type, event.kv.key, event.kv.mod_revision))
        assert got == first[:2]
        await idle.aclose()
        await closed(real, hub)
    run(main())
