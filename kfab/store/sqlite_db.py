"""The SQLite database under the SQLite store: one file, one writer, grouped durable commits.

Durability: WAL with synchronous=NORMAL, as k3s's kine runs SQLite. A commit is written to the WAL file
before the write is acknowledged, so an acknowledged write survives a crash or kill -9 of the process (the
kernel holds the bytes). The WAL is fsynced by the checkpoint thread, at most CHECKPOINT_INTERVAL after a
commit: a power loss or kernel crash can lose the writes of that last second or so, never leaves the
database corrupt or half a transaction in it. synchronous=FULL (an fsync per commit, on the event loop)
cost 5-20 ms per commit on this machine's disk under load and stalled every request behind it
(bench/api.py: create p99 @500 req/s 441 ms with FULL). Writes are grouped: whatever writes are queued
run in one transaction and share one commit; each has a savepoint, so one that fails leaves the others
intact.

Threads: statements and COMMIT run on the event loop's thread (microseconds against the page cache); only
WAL checkpoints, which fsync the WAL and write and fsync the main database file, run in a thread of their
own. Running statements in worker threads was measured to be
far slower inside a busy API server: each step of a worker needs the GIL back, and a busy event loop
thread hands it over only every switch interval (5 ms), so one write or a 10,000-row list took tens to
hundreds of ms. Reads use a connection of their own (WAL lets them run beside the writer's transaction),
each in a fresh read transaction, so each sees every commit acknowledged before it began.

One process per file, enforced with a lock file: another process's writes would never reach this
process's watchers.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import os
import sqlite3
import threading
from typing import Callable

from kfab.store.base import StoreUnavailable

log = logging.getLogger(__name__)

WRITE_BATCH = 256  # largest number of queued writes committed in one transaction
CHECKPOINT_INTERVAL = 1.0  # seconds between WAL checkpoints while there are writes


def _connect(path: str, query_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # see the module docstring: durability
    conn.execute("PRAGMA busy_timeout=30000")
    if query_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


def store_url(path) -> str:
    """The store URL a path is opened by, for messages: sqlite:///abs/path or sqlite:relative/path."""
    return f"sqlite://{path}" if str(path).startswith("/") else f"sqlite:{path}"


def _private_files(path: str) -> None:
    """The database and its companions readable by their owner only: they hold every Secret's bytes.

    SQLite gives the -wal and -shm files the database file's mode, so the database is made 0600 before
    SQLite first opens it; files an older kfab made 0644 are narrowed on the way.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm", path + ".lock"):
        try:
            os.chmod(name, 0o600)
        except FileNotFoundError:
            pass


def _lock_exclusively(path: str):
    """Hold <path>.lock for as long as the store is open: a second process would never see this one's
    writes in its watches, so it is refused up front. The kernel drops the lock if the process dies."""
    try:
        lock = os.fdopen(os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
    except OSError as e:
        raise StoreUnavailable(f"{store_url(path)}: cannot create the lock file {path}.lock: "
                               f"{e.strerror or e}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StoreUnavailable(f"{store_url(path)}: already in use by another process (one API server per SQLite "
                               "file; use etcd for several API servers)") from None
    return lock


class SQLiteDatabase:
    """`await write(op)` runs op(conn) in a grouped, committed transaction and returns its result;
    `await read(fn)` runs fn(conn) in a read transaction. `revision()` reads the committed revision and
    `committed(revision)` is called after each commit (before the writers are answered)."""

    def __init__(self, path: str, schema: str, revision: Callable[[sqlite3.Connection], int],
                 committed: Callable[[int], None]):
        self.path = path
        self._revision_of = revision
        self._committed = committed
        try:
            _private_files(path)
        except OSError as e:
            raise StoreUnavailable(f"{store_url(path)}: cannot create the state database: {e.strerror or e}") from None
        self._lock = _lock_exclusively(path)
        try:
            self._conn = _connect(path)  # the one writer connection
            self._conn.executescript(schema)
            # Checkpoints (copying the WAL into the database file, with its own fsync) run in a thread
            # of their own so they never stall a commit.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self.revision = revision(self._conn)
            self._reader = _connect(path, query_only=True)
        except sqlite3.Error as e:
            self._lock.close()
            raise StoreUnavailable(f"{store_url(path)}: cannot open state database: {e}") from e
        self._pending: collections.deque = collections.deque()  # (op, future) waiting for the writer
        self._wake_writer = asyncio.Event()
        self._closed = False
        self._writer = asyncio.create_task(self._write_loop(), name="kfab-sqlite-writer")
        self._checkpoint_due = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="kfab-sqlite-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

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
                    log.warning("%s: checkpoint failed: %s", store_url(self.path), e)
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
                    revision = self._revision_of(conn)
                except sqlite3.Error as e:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    err = StoreUnavailable(f"{store_url(self.path)}: write failed: {e}")
                    outcomes, revision = [(fut, None, err) for _, fut in batch], self.revision
                # Advance first: whoever is told "written" then sees the revision and its watchers are woken.
                if revision > self.revision:
                    self.revision = revision
                    self._committed(revision)
                for fut, result, error in outcomes:
                    if fut.cancelled():
                        continue
                    if error is not None:
                        fut.set_exception(error)
                    else:
                        fut.set_result(result)

    async def write(self, op: Callable[[sqlite3.Connection], object]):
        if self._closed:
            raise StoreUnavailable(f"{store_url(self.path)}: store is closed")
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        self._wake_writer.set()
        return await fut

    # ---- reads: inline, on a connection of their own ---------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], object]):
        """Run fn in one read transaction: a consistent snapshot that has every acknowledged write.

        Reads never await, so one reader connection serves them all, one at a time."""
        if self._closed:
            raise StoreUnavailable(f"{store_url(self.path)}: store is closed")
        try:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            raise StoreUnavailable(f"{store_url(self.path)}: read failed: {e}") from e

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake_writer.set()  # it finishes the writes already queued (their callers are waiting), then ends
        await self._writer
        self._checkpoint_due.set()
        await asyncio.to_thread(self._checkpointer.join)
        self._conn.close()
        self._reader.close()
        self._lock.close()
