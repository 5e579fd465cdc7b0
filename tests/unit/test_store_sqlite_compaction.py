"""SQLite compaction, done in small chunks, leaves every revision at or after the compacted one intact."""

import asyncio

import pytest

from kfab.store import RevisionCompacted, open_store
from kfab.store import sqlite as sqlite_store


def test_chunked_compaction_keeps_history_from_the_compacted_revision(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "COMPACT_CHUNK", 3)  # many chunks even for a short history

    async def body():
        store = await open_store(f"sqlite://{tmp_path}/state.db")
        try:
            for round_ in range(4):
                for i in range(5):
                    key = f"/registry/pods/ns/p{i}"
                    if round_ == 0:
                        await store.create(key, b"0")
                    elif (i + round_) % 3 == 0:
                        await store.delete(key)
                        await store.create(key, str(round_).encode())
                    else:
                        await store.update(key, str(round_).encode())
            middle = await store.current_revision() - 7
            end = await store.current_revision()
            before = {rev: await store.list("/registry/", rev) for rev in range(middle, end + 1)}
            events_before = await take_all(store, middle, end)

            await store.compact(middle)

            with pytest.raises(RevisionCompacted):
                await store.list("/registry/", middle - 1)
            for rev in range(middle, end + 1):
                assert await store.list("/registry/", rev) == before[rev]
            assert await take_all(store, middle, end) == events_before
        finally:
            await store.close()

    asyncio.run(body())


async def take_all(store, after, end):
    events = []
    async for event in store.watch("/registry/", after):
        events.append(event)
        if event.kv.mod_revision == end:
            return events
