"""SQLite backend: the embedded default store, one file, one API server process.

Layout: `kv` holds current values; `log` holds one row per revision (PUT or DELETE) and is what watches
and list-at-revision read. `log.revision` is AUTOINCREMENT, so the global revision is never reused even
after compaction removes rows (sqlite_sequence keeps the high-water mark).

Durability: WAL with synchronous=FULL fsyncs the WAL on every commit, so a write is on disk before it is
acknowledged and survives kill -9. Writes are grouped: whatever writes are queued run in one transaction
and share one commit (one fsync).

Threads: statements and COMMIT run on the event loop's thread (microseconds against the page cache; a
WAL fsync is well under a millisecond on an SSD); only WAL checkpoints, which write and fsync the main
database file, run in a thread of their own. Running statements in worker threads was measured to be
far slower inside a busy API server: each step of a worker needs the GIL back, and a busy event loop
thread hands it over only every switch interval (5 ms), so one write or a 10,000-row list took tens to
hundreds of ms. Reads use a connection of their own (WAL lets them run beside the writer's transaction),
each in a fresh read transaction, so each sees every commit acknowledged before it began.

Watches are fed in-process: after each commit the writer wakes waiting watchers, and each watcher reads
the log from its own last revision, so a slow watcher never holds up writers. Writes made by another
process on the same file are NOT seen by watchers here: one API server per SQLite file (use etcd for
several API servers).
"""

from __future__ import annotations

import asyncio
import os
import collections
import fcntl
import logging
import sqlite3
import threading
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

log = logging.getLogger(__name__)

PUT, DELETE = 0, 1
# Largest number of queued writes committed in one transaction, and log rows read per watch step.
WRITE_BATCH = 256
WATCH_PAGE = 1000
COMPACT_CHUNK = 2000  # revisions per compaction step
CHECKPOINT_INTERVAL = 1.0  # seconds between WAL checkpoints while there are writes

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


def _connect(path: str, query_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    if query_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


def _revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return row[0] if row else 0


def _compacted(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]


def _lock_exclusively(path: str):
    """Hold <path>.lock for as long as the store is open: a second process would never see this one's
    writes in its watches, so it is refused up front. The kernel drops the lock if the process dies."""
    lock = open(path + ".lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StoreUnavailable(f"sqlite:{path}: already in use by another process (one API server per SQLite "
                               "file; use etcd for several API servers)") from None
    return lock


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None  # the one writer connection
        self._pending: collections.deque = collections.deque()  # (op, future) waiting for the writer
        self._wake_writer = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None  # WAL: reads run beside the writer's transaction
        self._revision = 0
        self._changed = asyncio.Event()
        self._closed = False
        self._lock = None

    @classmethod
    async def open(cls, path: str | os.PathLike) -> "SQLiteStore":
        store = cls(path)
        store._loop = asyncio.get_running_loop()
        store._lock = _lock_exclusively(store.path)
        try:
            store._conn = _connect(store.path)
            store._conn.executescript(SCHEMA)
            # Checkpoints (copying the WAL into the database file, with its own fsync) run in a thread
            # of their own so they never stall a commit.
            store._conn.execute("PRAGMA wal_autocheckpoint=0")
            store._revision = _revision(store._conn)
            store._reader = _connect(store.path, query_only=True)
        except sqlite3.Error as e:
            store._lock.close()
            raise StoreUnavailable(f"sqlite:{store.path}: cannot open state database: {e}") from e
        store._writer = asyncio.create_task(store._write_loop(), name="kfab-sqlite-writer")
        store._checkpointer = threading.Thread(target=store._checkpoint_loop, name="kfab-sqlite-checkpoint",
                                               daemon=True)
        store._checkpointer.start()
        return store

    def _checkpoint_loop(self) -> None:
        conn = _connect(self.path)
        try:
            while not self._closed:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                try:
                    # PASSIVE: copy what it can without waiting for (or blocking) readers and the writer.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    log.warning("sqlite:%s: checkpoint failed: %s", self.path, e)
                # At most one checkpoint per interval, however many commits there are.
                self._checkpoint_due.wait(CHECKPOINT_INTERVAL) if not self._closed else None
        finally:
            conn.close()

    # ---- writes: grouped, on the event loop's thread ---------------------------------------------------

    async def _write_loop(self) -> None:
        conn = self._conn
        while not self._closed or self._pending:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(WRITE_BATCH, len(self._pending)))]
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
                    self._checkpoint_due.set()
                    revision = _revision(conn)
                except sqlite3.Error as e:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    err = StoreUnavailable(f"sqlite:{self.path}: write failed: {e}")
                    outcomes, revision = [(fut, None, err) for _, fut in batch], self._revision
                # Advance first: whoever is told "written" then sees it in current_revision() and watches.
                self._advance(revision)
                for fut, result, error in outcomes:
                    if fut.cancelled():
                        continue
                    if error is not None:
                        fut.set_exception(error)
                    else:
                        fut.set_result(result)

    def _advance(self, revision: int) -> None:
        if revision > self._revision:
            self._revision = revision
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _write(self, op: Callable[[sqlite3.Connection], object]):
        if self._closed:
            raise StoreUnavailable(f"sqlite:{self.path}: store is closed")
        fut = self._loop.create_future()
        self._pending.append((op, fut))
        self._wake_writer.set()
        return await fut

    # ---- reads: inline, on a connection of their own ---------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], object]):
        """Run fn in one read transaction: a consistent snapshot that has every acknowledged write.

        Reads never await, so one reader connection serves them all, one at a time."""
        if self._closed:
            raise StoreUnavailable(f"sqlite:{self.path}: store is closed")
        try:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            raise StoreUnavailable(f"sqlite:{self.path}: read failed: {e}") from e

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
        if self._closed:
            raise StoreUnavailable(f"sqlite:{self.path}: store is closed")
        return self._revision  # one writer, in this process: it knows every revision it committed

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
                # Reads never suspend, so give the event loop a turn per event: whoever the consumer
                # hands the event to runs before the next one (as with events arriving over a socket).
                await asyncio.sleep(0)
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
        if self._writer is not None:
            self._wake_writer.set()  # it finishes the writes already queued (their callers are waiting), then ends
            await self._writer
        self._checkpoint_due.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        for conn in (self._conn, self._reader):
            if conn is not None:
                conn.close()
        self._lock.close()
        # Wake watchers so they see the store is closed.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
