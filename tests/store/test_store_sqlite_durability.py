"""SQLite: an acknowledged write survives kill -9 of the process that made it."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from kfab.store import StoreUnavailable, open_store

WRITER = """
import asyncio, sys
import pytest

from kfab.store import StoreUnavailable, open_store

async def main(url):
    store = await open_store(url)
    i = 0
    while True:
        # Several writes in flight at once, so group commit is exercised too.
        kvs = await asyncio.gather(*(store.create(f"/registry/configmaps/default/cm{i + j}", b"x" * 200)
                                     for j in range(8)))
        for kv in kvs:
            print(kv.key, kv.mod_revision, flush=True)  # the acknowledgement
        i += 8

asyncio.run(main(sys.argv[1]))
"""


def test_every_acknowledged_write_survives_kill_9(tmp_path):
    url = f"sqlite://{tmp_path}/state.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    acked: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 400:
            assert time.monotonic() < deadline, "writer did not acknowledge 400 writes in time"
            line = child.stdout.readline()
            assert line, f"writer exited early with {child.wait()}"
            key, rev = line.split()
            acked[key] = int(rev)
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: more writes are in flight right now
    finally:
        child.kill()
        child.wait()
        child.stdout.close()

    async def check():
        store = await open_store(url)
        try:
            items, rev = await store.list("/registry/configmaps/")
            stored = {kv.key: kv.mod_revision for kv in items}
            missing = sorted(set(acked) - set(stored))
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
            assert all(stored[k] == r for k, r in acked.items())
            # The revision counter carries on from the recovered state, never reusing a revision.
            new = await store.create("/registry/configmaps/default/after", b"y")
            assert new.mod_revision > max(stored.values()) and new.mod_revision > rev
        finally:
            await store.close()

    asyncio.run(check())


def test_revisions_are_never_reused_after_compaction_and_reopen(tmp_path):
    url = f"sqlite:{os.path.relpath(tmp_path / 'state.db')}"  # the relative form of the URL

    async def first():
        store = await open_store(url)
        await store.create("/registry/a", b"1")
        last = await store.delete("/registry/a")
        await store.compact(last.mod_revision)
        await store.close()
        return last.mod_revision

    async def second(previous):
        store = await open_store(url)
        try:
            assert await store.current_revision() == previous
            assert (await store.create("/registry/a", b"2")).mod_revision == previous + 1
        finally:
            await store.close()

    asyncio.run(second(asyncio.run(first())))


def test_a_second_process_on_the_same_file_is_refused_with_a_clear_error(tmp_path):
    url = f"sqlite://{tmp_path}/state.db"
    holder = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline(), "the first process never wrote"

        async def second():
            with pytest.raises(StoreUnavailable) as err:
                await open_store(url)
            assert "already in use by another process" in str(err.value) and str(tmp_path) in str(err.value)

        asyncio.run(second())
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()

    async def after_it_is_gone():
        store = await open_store(url)  # the lock died with the process that held it
        await store.close()

    asyncio.run(after_it_is_gone())
