"""SQLite backend: the embedded default store, one file, one API server process.

Layout: `kv` holds current values; `log` holds one row per revision (PUT or DELETE) and is what watches
and list-at-revision read. `log.revision` is AUTOINCREMENT, so the global revision is never reused even
after compaction removes rows (sqlite_sequence keeps the high-water mark).

Durability, grouped commits and threading: see kfab/store/sqlite_db.py.

Watches are fed in-process: after each commit the writer wakes waiting watchers, and each watcher reads
the log from its own last revision, so a slow watcher never holds up writers. Writes made by another
process on the same file are NOT seen by watchers here: one API server per SQLite file (use etcd for
several API servers).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import AsyncIterator

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
from kfab.store.sqlite_db import SQLiteDatabase, store_url

PUT, DELETE = 0, 1
WATCH_PAGE = 1000  # log rows read per watch step
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


def _revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return row[0] if row else 0


def _compacted(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._db: SQLiteDatabase | None = None
        self._changed = asyncio.Event()  # replaced by a fresh one after every commit
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike) -> "SQLiteStore":
        store = cls(path)
        store._db = SQLiteDatabase(store.path, SCHEMA, _revision, store._committed)
        return store

    def _committed(self, revision: int) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _write(self, op):
        return await self._db.write(op)

    async def _read(self, fn):
        return await self._db.read(fn)

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
            raise StoreUnavailable(f"{store_url(self.path)}: store is closed")
        return self._db.revision  # one writer, in this process: it knows every revision it committed

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
                raise StoreUnavailable(f"{store_url(self.path)}: store is closed")
            if self._db.revision <= after:
                await changed.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.close()
        self._committed(self._db.revision)  # wake watchers so they see the store is closed
