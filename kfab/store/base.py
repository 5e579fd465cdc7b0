"""The state store interface every backend implements (SQLite embedded, etcd for HA).

Keys look like `/registry/<resource>/<namespace>/<name>` (cluster-scoped: `/registry/<resource>/<name>`).
Every write bumps one global revision; an object's `resourceVersion` is the `mod_revision` of its key,
and a list's `resourceVersion` is the store revision it was read at.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Literal


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class WatchEvent:
    """PUT for a create or update, DELETE for a delete.

    For DELETE, `kv.value` is the last value the key held and `kv.mod_revision` is the revision of the
    delete itself. `prev` is the value before this event (None on create).
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    """create() of a key that exists."""


class KeyNotFound(StoreError):
    """update()/delete() of a key that does not exist."""


class RevisionConflict(StoreError):
    """update()/delete() whose expected mod_revision is not the key's current one."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"{key}: revision conflict")
        self.current = current


class RevisionCompacted(StoreError):
    """A read or watch asked for a revision older than the compacted one."""

    def __init__(self, requested: int, compacted: int):
        super().__init__(f"revision {requested} is compacted (oldest available {compacted + 1})")
        self.requested = requested
        self.compacted = compacted


class StoreUnavailable(StoreError):
    """The backend cannot serve the request now (e.g. etcd has no quorum).

    On a write, the message says when the outcome is unknown (etcd timed out after the write may have
    reached the raft log): re-read before retrying.
    """


class Store(abc.ABC):
    """Async key-value store with one global revision, compare-and-swap, and watch."""

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    async def list(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        """Keys under prefix in key order, at `revision` (0 = now), and the revision read at.

        RevisionCompacted below the compacted revision; StoreError for a revision not reached yet.
        """

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Raises KeyExists."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        """Raises KeyNotFound, RevisionConflict (when expected_mod_revision is given and differs)."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        """Returns the deleted value with mod_revision = the delete's revision. KeyNotFound, RevisionConflict."""

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        """Events for keys under prefix with revision > after_revision, in revision order, forever.

        Raises RevisionCompacted (on first iteration) when after_revision is older than the compacted
        revision. Closing the iterator (aclose / break) releases the watch.
        """

    @abc.abstractmethod
    async def current_revision(self) -> int: ...

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at or below revision (current values stay).

        Afterwards, on every backend, list(revision=r) works for r >= revision and watch(after=a) for
        a >= revision; older ones raise RevisionCompacted. Compacting again at or below is a no-op.
        """

    @abc.abstractmethod
    async def close(self) -> None: ...
