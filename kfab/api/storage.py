"""Kubernetes objects over the state store: dicts in and out, store errors as Kubernetes Status errors."""

from __future__ import annotations

import asyncio

from kfab.api import strategy
from kfab.objects.errors import APIError, Cause, already_exists, conflict, gone, not_found
from kfab.objects.registry import ResourceType
from kfab.store.base import (KeyExists, KeyNotFound, KeyValue, RevisionCompacted, RevisionConflict, Store,
                             StoreUnavailable)

# How often an unconditional update re-reads and retries when another writer got in first.
UPDATE_RETRIES = 8


def unavailable(error: Exception) -> APIError:
    return APIError(503, "ServiceUnavailable", f"the state store is unavailable: {error}", retry_after_seconds=1)


def expired(error: RevisionCompacted) -> APIError:
    return gone(f"too old resource version: {error.requested} ({error.compacted + 1})")


# kube-apiserver's watch cache waits this long for a resourceVersion it has not seen yet (waitUntilFreshAndBlock).
FRESHNESS_WAIT = 3.0


def too_large(requested: int, current: int) -> APIError:
    """504 as kube-apiserver's storage.NewTooLargeResourceVersionError: clients (reflectors) relist on it."""
    return APIError(504, "Timeout", f"Timeout: Too large resource version: {requested}, current: {current}",
                     causes=[Cause("", "Too large resource version", "ResourceVersionTooLarge")],
                     retry_after_seconds=1)


class ResourceStorage:
    def __init__(self, store: Store):
        self.store = store

    async def wait_for_revision(self, revision: int, timeout: float = FRESHNESS_WAIT) -> None:
        """Return once the store has reached `revision`; 504 Too large resource version after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                current = await self.store.current_revision()
            except StoreUnavailable as e:
                raise unavailable(e) from None
            if current >= revision:
                return
            if loop.time() >= deadline:
                raise too_large(revision, current)
            await asyncio.sleep(0.1)

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        obj = await self.get_or_none(rt, namespace, name)
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return obj

    async def get_or_none(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        try:
            kv = await self.store.get(rt.store_key(namespace, name))
        except StoreUnavailable as e:
            raise unavailable(e) from None
        return strategy.decode(kv, rt) if kv else None

    async def list(self, rt: ResourceType, namespace: str | None, revision: int = 0) -> tuple[list[dict], int]:
        kvs, rev = await self.list_stored(rt, namespace, revision)
        return [strategy.decode(kv, rt) for kv in kvs], rev

    async def list_stored(self, rt: ResourceType, namespace: str | None,
                          revision: int = 0) -> tuple[list[KeyValue], int]:
        """list() before decoding: the stored values in key order (decode each with strategy.decode)."""
        try:
            return await self.store.list(rt.store_prefix(namespace), revision)
        except RevisionCompacted as e:
            raise expired(e) from None
        except StoreUnavailable as e:
            raise unavailable(e) from None

    async def create(self, rt: ResourceType, obj: dict) -> dict:
        meta = obj["metadata"]
        try:
            kv = await self.store.create(rt.store_key(meta.get("namespace"), meta["name"]), strategy.encode(obj))
        except KeyExists:
            raise already_exists(rt.plural, meta["name"], rt.group) from None
        except StoreUnavailable as e:
            raise unavailable(e) from None
        return strategy.decode(kv, rt)

    async def update(self, rt: ResourceType, obj: dict, expected: int) -> dict:
        meta = obj["metadata"]
        try:
            kv = await self.store.update(rt.store_key(meta.get("namespace"), meta["name"]), strategy.encode(obj),
                                         expected)
        except RevisionConflict:
            raise conflict(rt.plural, meta["name"], rt.group) from None
        except KeyNotFound:
            raise not_found(rt.plural, meta["name"], rt.group) from None
        except StoreUnavailable as e:
            raise unavailable(e) from None
        return strategy.decode(kv, rt)

    async def delete(self, rt: ResourceType, obj: dict, expected: int) -> dict:
        """Delete the object at the revision we read; returns it with the delete's resourceVersion."""
        meta = obj["metadata"]
        try:
            kv = await self.store.delete(rt.store_key(meta.get("namespace"), meta["name"]), expected)
        except RevisionConflict:
            raise conflict(rt.plural, meta["name"], rt.group) from None
        except KeyNotFound:
            raise not_found(rt.plural, meta["name"], rt.group) from None
        except StoreUnavailable as e:
            raise unavailable(e) from None
        return strategy.decode(kv, rt)
