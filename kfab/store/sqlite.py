"""SQLite backend: the embedded default store, one file, one API server process.

Layout: `kv` holds current values; `log` holds one row per revision (PUT or DELETE) and is what watches
and list-at-revision read. `log.revision` is AUTOINCREMENT, so the global revision is never reused even
after compaction removes rows (sqlite_sequence keeps the high-water mark).

Durability: WAL with synchronous=FULL fsyncs the WAL on every commit, so a write is on disk before it is
acknowledged and survives kill -9. All writes go through one writer thread that groups whatever writes
are queued into one transaction (group commit: one fsync for many concurrent writes).

Watches are fed in-process: after each commit the writer wakes waiting watchers, and each watcher reads
the log from its own last revision, so a slow watcher never holds up writers. Writes made by another
process on the same file are NOT seen by watchers here: one API server per SQLite file (use etcd for
several API servers).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator, Callable

from kfab.store.base import (
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionCompacted,
    RevisionConflict,
    Store,
    StoreError,
    StoreUnavailable,
    WatchEvent,
)

PUT, DELETE = 0, 1
# Largest number of queued writes committed in one transaction, and log rows read per watch step.
WRITE_BATCH = 256
WATCH_PAGE = 1000
COMPACT_CHUNK = 2000  # revisions per compaction step

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
"""


def prefix_end(prefix: str) -> str | None:
    """The smallest key greater than every key starting with prefix (None: no upper bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def _range_sql(prefix: str, column: str = "key") -> tuple[str, list]:
    end = prefix_end(prefix)
    if end is None:
        return f"{column} >= ?", [prefix]
    return f"{column} >= ? AND {column} < ?", [prefix, end]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return row[0] if row else 0


def _compacted(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writes: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kfab-sqlite-read")
        self._revision = 0
        self._changed = asyncio.Event()
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike) -> "SQLiteStore":
        store = cls(path)
        await store._start()
        return store

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future = self._loop.create_future()
        self._writer = threading.Thread(target=self._write_loop, args=(ready,), name="kfab-sqlite-write",
                                        daemon=True)
        self._writer.start()
        self._revision = await ready

    # ---- writer thread -------------------------------------------------------------------------------

    def _resolve(self, fut: asyncio.Future, result, error: BaseException | None) -> None:
        if fut.cancelled():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    def _write_loop(self, ready: asyncio.Future) -> None:
        try:
            conn = _connect(self.path)
            conn.executescript(SCHEMA)
            revision = _revision(conn)
        except sqlite3.Error as e:
            err = StoreUnavailable(f"sqlite:{self.path}: cannot open state database: {e}")
            self._loop.call_soon_threadsafe(self._resolve, ready, None, err)
            return
        self._loop.call_soon_threadsafe(self._resolve, ready, revision, None)
        while True:
            item = self._writes.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < WRITE_BATCH:
                try:
                    more = self._writes.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._writes.put(None)
                    break
                batch.append(more)
            outcomes = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, fut in batch:
                    # A savepoint per write: one that fails half-way leaves nothing behind, and the
                    # others in the batch still commit.
                    conn.execute("SAVEPOINT write")
                    try:
                        outcomes.append((fut, op(conn), None))
                    except sqlite3.Error:
                        raise
                    except Exception as e:  # noqa: BLE001 - StoreError, or a bug: reported to that caller
                        conn.execute("ROLLBACK TO write")
                        outcomes.append((fut, None, e))
                    conn.execute("RELEASE write")
                conn.execute("COMMIT")
                revision = _revision(conn)
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                err = StoreUnavailable(f"sqlite:{self.path}: write failed: {e}")
                outcomes = [(fut, None, err) for _, fut in batch]
            for fut, result, error in outcomes:
                self._loop.call_soon_threadsafe(self._resolve, fut, result, error)
            self._loop.call_soon_threadsafe(self._advance, revision)
        conn.close()

    def _advance(self, revision: int) -> None:
        if revision > self._revision:
            self._revision = revision
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _write(self, op: Callable[[sqlite3.Connection], object]):
        if self._closed:
            raise StoreUnavailable(f"sqlite:{self.path}: store is closed")
        fut = self._loop.create_future()
        self._writes.put((op, fut))
        return await fut

    # ---- reads (own connections, WAL lets them run beside the writer) -----------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], object]):
        if self._closed:
            raise StoreUnavailable(f"sqlite:{self.path}: store is closed")

        def run():
            conn = self._reader()
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("ROLLBACK")
            except sqlite3.Error as e:
                raise StoreUnavailable(f"sqlite:{self.path}: read failed: {e}") from e

        return await self._loop.run_in_executor(self._readers, run)

    # ---- Store interface -----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        def fn(conn):
            row = conn.execute("SELECT value, create_revision, mod_revision FROM kv WHERE key = ?",
                               (key,)).fetchone()
            return KeyValue(key, row[0], row[1], row[2]) if row else None

        return await self._read(fn)

    async def list(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        where, args = _range_sql(prefix)

        def fn(conn):
            current = _revision(conn)
            if revision <= 0 or revision == current:
                rows = conn.execute(f"SELECT key, value, create_revision, mod_revision FROM kv WHERE {where} "
                                    "ORDER BY key", args).fetchall()
                return [KeyValue(*r) for r in rows], current
            if revision > current:
                raise StoreError(f"revision {revision} is newer than the current revision {current}")
            compacted = _compacted(conn)
            if revision < compacted:
                raise RevisionCompacted(revision, compacted)
            # SQLite takes the bare columns from the row holding MAX(revision): each key's last write
            # at or before the wanted revision.
            rows = conn.execute(f"SELECT key, value, create_revision, MAX(revision), type FROM log "
                                f"WHERE {where} AND revision <= ? GROUP BY key ORDER BY key",
                                [*args, revision]).fetchall()
            return [KeyValue(k, v, c, m) for k, v, c, m, t in rows if t == PUT], revision

        return await self._read(fn)

    async def create(self, key: str, value: bytes) -> KeyValue:
        value = bytes(value)

        def op(conn):
            if conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone():
                raise KeyExists(key)
            rev = conn.execute("INSERT INTO log (key, type, value, create_revision, prev_revision) "
                               "VALUES (?, ?, ?, 0, 0)", (key, PUT, value)).lastrowid
            conn.execute("UPDATE log SET create_revision = ? WHERE revision = ?", (rev, rev))
            conn.execute("INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?)",
                         (key, value, rev, rev))
            return KeyValue(key, value, rev, rev)

        return await self._write(op)

    @staticmethod
    def _current(conn, key: str, expected: int | None) -> KeyValue:
        row = conn.execute("SELECT value, create_revision, mod_revision FROM kv WHERE key = ?",
                           (key,)).fetchone()
        if row is None:
            raise KeyNotFound(key)
        current = KeyValue(key, row[0], row[1], row[2])
        if expected is not None and expected != current.mod_revision:
            raise RevisionConflict(key, current)
        return current

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        value = bytes(value)

        def op(conn):
            current = self._current(conn, key, expected_mod_revision)
            rev = conn.execute("INSERT INTO log (key, type, value, create_revision, prev_revision) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (key, PUT, value, current.create_revision, current.mod_revision)).lastrowid
            conn.execute("UPDATE kv SET value = ?, mod_revision = ? WHERE key = ?", (value, rev, key))
            return KeyValue(key, value, current.create_revision, rev)

        return await self._write(op)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        def op(conn):
            current = self._current(conn, key, expected_mod_revision)
            rev = conn.execute("INSERT INTO log (key, type, value, create_revision, prev_revision) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (key, DELETE, current.value, current.create_revision,
                                current.mod_revision)).lastrowid
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            return KeyValue(key, current.value, current.create_revision, rev)

        return await self._write(op)

    async def current_revision(self) -> int:
        return await self._read(_revision)

    async def compact(self, revision: int) -> None:
        def begin(conn):
            current = _revision(conn)
            if revision > current:
                raise StoreError(f"cannot compact at revision {revision}: newer than current {current}")
            if revision <= _compacted(conn):
                return None
            # Recorded first: from now on reads and watches below `revision` get RevisionCompacted, so
            # the rows removed below, chunk by chunk, are never read half-removed.
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))
            return conn.execute("SELECT MIN(revision) FROM log").fetchone()[0]

        def chunk(low: int, high: int):
            def op(conn):
                # Keep each key's last row at or below `revision` (list-at-revision and watch `prev` need
                # it) unless it is a delete; drop everything older.
                conn.execute("DELETE FROM log WHERE revision > ?1 AND revision <= ?2 AND (type = 1 OR revision < "
                             "(SELECT MAX(m.revision) FROM log m WHERE m.key = log.key AND m.revision <= ?3))",
                             (low, high, revision))
            return op

        oldest = await self._write(begin)
        if oldest is None:
            return
        # Small chunks, each its own write: a big compaction never holds up other writes for long.
        for low in range(oldest - 1, revision, COMPACT_CHUNK):
            await self._write(chunk(low, min(low + COMPACT_CHUNK, revision)))

    def _events(self, prefix: str, after: int):
        where, args = _range_sql(prefix, "l.key")

        def fn(conn):
            compacted = _compacted(conn)
            if after < compacted:
                raise RevisionCompacted(after, compacted)
            rows = conn.execute(
                "SELECT l.revision, l.key, l.type, l.value, l.create_revision, l.prev_revision, p.type, "
                "p.value, p.create_revision FROM log l LEFT JOIN log p ON p.revision = l.prev_revision "
                f"WHERE l.revision > ? AND {where} ORDER BY l.revision LIMIT {WATCH_PAGE}",
                [after, *args]).fetchall()
            return rows, _revision(conn)

        return fn

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        after = after_revision
        while True:
            changed = self._changed
            rows, seen = await self._read(self._events(prefix, after))
            for rev, key, typ, value, create_rev, prev_rev, ptype, pvalue, pcreate in rows:
                kv = KeyValue(key, value, create_rev, rev)
                if typ == DELETE:
                    yield WatchEvent("DELETE", kv, KeyValue(key, value, create_rev, prev_rev))
                else:
                    prev = KeyValue(key, pvalue, pcreate, prev_rev) if prev_rev and ptype == PUT else None
                    yield WatchEvent("PUT", kv, prev)
                after = rev
            if len(rows) == WATCH_PAGE:
                continue
            # Nothing else under prefix up to `seen`; skip ahead so the next read starts there.
            after = max(after, seen)
            if self._closed:
                raise StoreUnavailable(f"sqlite:{self.path}: store is closed")
            if self._revision <= after:
                await changed.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writes.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        self._readers.shutdown(wait=True)
        # Wake watchers so they see the store is closed.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
