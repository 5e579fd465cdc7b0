"""The Store contract the API server relies on, proven on both backends (SQLite and a real 3-member etcd)."""

import asyncio

import pytest

from kfab.store import KeyExists, KeyNotFound, RevisionCompacted, RevisionConflict, StoreError


async def take(events, n: int, deadline: float = 15.0) -> list:
    """The next n events of a watch, failing (not hanging) if they do not come before the deadline."""

    async def collect():
        return [await anext(events) for _ in range(n)]

    return await asyncio.wait_for(collect(), deadline)


def test_create_get_update_delete_with_compare_and_swap(with_store, prefix):
    key = prefix + "default/cm1"

    async def body(store):
        created = await store.create(key, b"v1")
        assert (created.value, created.create_revision) == (b"v1", created.mod_revision)
        with pytest.raises(KeyExists):
            await store.create(key, b"again")
        assert await store.get(key) == created

        updated = await store.update(key, b"v2", expected_mod_revision=created.mod_revision)
        assert updated.mod_revision > created.mod_revision
        assert updated.create_revision == created.create_revision
        with pytest.raises(RevisionConflict) as conflict:
            await store.update(key, b"stale", expected_mod_revision=created.mod_revision)
        assert conflict.value.current == updated  # the caller learns what won
        assert (await store.get(key)).value == b"v2"

        unconditional = await store.update(key, b"v3")
        with pytest.raises(RevisionConflict):
            await store.delete(key, expected_mod_revision=updated.mod_revision)
        deleted = await store.delete(key, expected_mod_revision=unconditional.mod_revision)
        assert deleted.value == b"v3" and deleted.mod_revision > unconditional.mod_revision
        assert await store.get(key) is None
        assert await store.current_revision() >= deleted.mod_revision

        with pytest.raises(KeyNotFound):
            await store.update(key, b"gone")
        with pytest.raises(KeyNotFound):
            await store.delete(key)
        recreated = await store.create(key, b"v4")
        assert recreated.create_revision > deleted.mod_revision

    with_store(body)


def test_only_one_of_concurrent_compare_and_swap_updates_wins(with_store, prefix):
    key = prefix + "default/counter"

    async def body(store):
        base = await store.create(key, b"0")

        async def attempt(i):
            try:
                return await store.update(key, str(i).encode(), expected_mod_revision=base.mod_revision)
            except RevisionConflict:
                return None

        results = await asyncio.gather(*(attempt(i) for i in range(20)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert await store.get(key) == winners[0]

    with_store(body)


def test_list_by_prefix_in_key_order_and_at_a_past_revision(with_store, prefix):
    async def body(store):
        await store.create(prefix + "ns1/b", b"b1")
        await store.create(prefix + "ns1/a", b"a1")
        await store.create(prefix + "ns10/x", b"other namespace")  # shares the string prefix "ns1"
        items, rev1 = await store.list(prefix + "ns1/")
        assert [(kv.key, kv.value) for kv in items] == [(prefix + "ns1/a", b"a1"), (prefix + "ns1/b", b"b1")]
        assert rev1 == await store.current_revision()

        await store.update(prefix + "ns1/a", b"a2")
        await store.delete(prefix + "ns1/b")
        await store.create(prefix + "ns1/c", b"c1")

        now, rev2 = await store.list(prefix + "ns1/")
        assert [(kv.key, kv.value) for kv in now] == [(prefix + "ns1/a", b"a2"), (prefix + "ns1/c", b"c1")]
        assert rev2 > rev1
        then, at = await store.list(prefix + "ns1/", revision=rev1)
        assert at == rev1
        assert then == items  # values and revisions exactly as they were
        everything, _ = await store.list(prefix)
        assert [kv.key for kv in everything] == [prefix + "ns1/a", prefix + "ns1/c", prefix + "ns10/x"]

    with_store(body)


def test_watch_from_a_revision_replays_history_then_follows_in_order(with_store, prefix):
    key = prefix + "default/web"

    async def body(store):
        start = await store.current_revision()
        created = await store.create(key, b"v1")
        updated = await store.update(key, b"v2")
        await store.create(prefix.rstrip("/") + "-other/x", b"outside the prefix")

        events = store.watch(prefix, start)
        try:
            put1, put2 = await take(events, 2)  # history from before the watch began
            assert (put1.type, put1.kv, put1.prev) == ("PUT", created, None)
            assert (put2.type, put2.kv.value, put2.prev) == ("PUT", b"v2", created)

            deleted = await store.delete(key)
            (gone,) = await take(events, 1)
            assert gone.type == "DELETE"
            assert gone.kv.mod_revision == deleted.mod_revision
            assert gone.kv.value == b"v2"  # the last value the object had
            assert gone.prev == updated
        finally:
            await events.aclose()

        # A watch resuming after the update sees only what came later.
        resumed = store.watch(prefix, updated.mod_revision)
        try:
            (only,) = await take(resumed, 1)
            assert only.type == "DELETE" and only.kv.mod_revision == deleted.mod_revision
        finally:
            await resumed.aclose()

    with_store(body)


def test_compaction_forgets_history_but_keeps_current_values(with_store, prefix):
    async def body(store):
        first = await store.create(prefix + "a", b"1")
        await store.update(prefix + "a", b"2")
        await store.create(prefix + "b", b"1")
        await store.delete(prefix + "b")
        last = await store.create(prefix + "c", b"1")
        await store.compact(last.mod_revision)

        with pytest.raises(RevisionCompacted) as too_old:
            await store.list(prefix, revision=first.mod_revision)
        assert too_old.value.compacted >= first.mod_revision
        old_watch = store.watch(prefix, first.mod_revision)
        with pytest.raises(RevisionCompacted):
            await take(old_watch, 1)

        items, _ = await store.list(prefix)
        assert [(kv.key, kv.value) for kv in items] == [(prefix + "a", b"2"), (prefix + "c", b"1")]
        at_compaction, _ = await store.list(prefix, revision=last.mod_revision)
        assert at_compaction == items

        # Watching from the compacted revision onward still works, with prev values.
        events = store.watch(prefix, last.mod_revision)
        try:
            await store.update(prefix + "a", b"3")
            (ev,) = await take(events, 1)
            assert (ev.type, ev.kv.value, ev.prev.value) == ("PUT", b"3", b"2")
        finally:
            await events.aclose()
        await store.compact(last.mod_revision)  # compacting again is harmless

    with_store(body)


def test_many_concurrent_watchers_each_see_every_event_in_order(with_store, prefix):
    async def body(store):
        start = await store.current_revision()
        watchers = [store.watch(prefix, start) for _ in range(100)]
        try:
            seen = [asyncio.ensure_future(take(w, 30, deadline=60)) for w in watchers]
            for i in range(10):
                kv = await store.create(f"{prefix}k{i}", b"1")
                kv = await store.update(kv.key, b"2", expected_mod_revision=kv.mod_revision)
                await store.delete(kv.key)
            results = await asyncio.gather(*seen)
        finally:
            for w in watchers:
                await w.aclose()
        expected = [(e.type, e.kv.key, e.kv.mod_revision) for e in results[0]]
        assert [t for t, _, _ in expected] == ["PUT", "PUT", "DELETE"] * 10
        revisions = [r for _, _, r in expected]
        assert revisions == sorted(revisions) and len(set(revisions)) == 30
        for events in results[1:]:
            assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == expected

    with_store(body, timeout=120)


def test_reading_at_a_revision_not_reached_yet_is_a_clear_error(with_store, prefix):
    async def body(store):
        await store.create(prefix + "a", b"1")
        future = await store.current_revision() + 1000
        with pytest.raises(StoreError) as err:
            await store.list(prefix, revision=future)
        assert not isinstance(err.value, RevisionCompacted)
        assert str(future) in str(err.value) and "newer" in str(err.value)

    with_store(body)
