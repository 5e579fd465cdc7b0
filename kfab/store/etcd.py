"""etcd v3 backend (HA): resourceVersion = etcd mod_revision, watches = etcd watches.

Uses aetcd's generated gRPC stubs directly: aetcd's high-level client takes one host and cannot read a
range at a revision, and we need both. One gRPC channel per member, and calls stay on one member until it
fails (as etcd's clientv3 pins an endpoint); then the next member is tried, round the cluster, up to a
deadline, and the call fails with StoreUnavailable naming the endpoints. One channel per member (not one
balanced channel over all) is what lets TLS check each member's certificate against the name it was dialled
by: `etcd+https://...?cacert=CA&cert=CRT&key=KEY` (etcdctl's flag names) verifies the members with CA and
presents CRT/KEY as the client certificate.

Mutations are transactions: create = txn(create_revision == 0), CAS update/delete =
txn(mod_revision == expected). Every call carries etcd's `hasleader` metadata so a member cut off from
the quorum refuses instead of serving stale data or a watch that never fires.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import AsyncIterator

import grpc

from aetcd import rpc

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

CALL_TIMEOUT = 5.0  # one RPC attempt
RETRY_FOR = 10.0  # keep retrying an unavailable cluster this long (covers a leader election)
LIST_PAGE = 2000
METADATA = (("hasleader", "true"),)
RETRYABLE = {rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED}


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix (b'\\0' = to the end of the key space)."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def _never_applied(e: rpc.AioRpcError) -> bool:
    """Whether a failed write certainly never reached the raft log, so retrying cannot apply it twice.

    As etcd's own clientv3 does, retry a mutation only when it was refused up front: a member without a
    leader (our `hasleader` metadata) or no connection at all. A timeout may still commit later.
    """
    details = (e.details() or "").lower()
    return e.code() == rpc.StatusCode.UNAVAILABLE and any(
        s in details for s in ("no leader", "failed to connect", "connection refused", "no address available"))


def _kv(kv) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), kv.create_revision, kv.mod_revision)


@dataclass(frozen=True)
class EtcdTLS:
    """What a TLS client of etcd needs: the CA the members' certificates chain to, and optionally its own
    certificate and key (etcd's --client-cert-auth asks for them)."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)


def _address(host: str, port: int) -> str:
    try:
        socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise StoreUnavailable(f"etcd endpoint {host}:{port}: cannot resolve: {e}") from e
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect to a restarted member quickly.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class _Member:
    """One member's channel and stubs; TLS checks its certificate against the name it is dialled by."""

    def __init__(self, host: str, port: int, tls: EtcdTLS | None):
        target = _address(host, port)
        if tls is None:
            self.channel = rpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
            self.channel = rpc.secure_channel(target, creds, options=CHANNEL_OPTIONS)
        self.kv = rpc.KVStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)


class EtcdStore(Store):
    def __init__(self, endpoints: list[tuple[str, int]], tls: EtcdTLS | None = None):
        self.endpoints = endpoints
        scheme = "etcd+https" if tls is not None else "etcd"
        self.name = f"{scheme}://" + ",".join(f"{h}:{p}" for h, p in endpoints)
        self._members = [_Member(h, p, tls) for h, p in endpoints]
        self._current = 0  # the member calls go to until it fails
        self._closed = False

    @classmethod
    async def open(cls, endpoints: list[tuple[str, int]], tls: EtcdTLS | None = None) -> "EtcdStore":
        store = cls(endpoints, tls)
        try:
            await store.current_revision()
        except BaseException:
            await store.close()
            raise
        return store

    def _member(self) -> _Member:
        return self._members[self._current]

    def _failed_over(self, member: _Member) -> bool:
        """Move off a member that failed (unless another call moved already); True after a full round."""
        if self._members[self._current] is member:
            self._current = (self._current + 1) % len(self._members)
        return self._current == 0

    # ---- calls with failover -------------------------------------------------------------------------

    def _unavailable(self, e: rpc.AioRpcError, mutation: bool = False) -> StoreUnavailable:
        unknown = " (the write may or may not have been applied)" if mutation and not _never_applied(e) else ""
        if unknown:
            return StoreUnavailable(f"etcd cluster {self.name} unavailable: {e.code().name}: {e.details()}{unknown}")
        return StoreUnavailable(f"etcd cluster {self.name} unavailable: no member answered in time (are the "
                                f"members running and reachable, with a quorum?); last: {e.code().name}: "
                                f"{e.details()}")

    async def _call(self, method: str, request, mutation: bool = False):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_FOR
        delay = 0.05
        while True:
            member = self._member()
            try:
                return await getattr(member.kv, method)(request, timeout=CALL_TIMEOUT, metadata=METADATA)
            except rpc.AioRpcError as e:
                if e.code() == rpc.StatusCode.OUT_OF_RANGE and "compacted" in (e.details() or ""):
                    raise RevisionCompacted(getattr(request, "revision", 0), await self._compacted()) from e
                if e.code() == rpc.StatusCode.OUT_OF_RANGE and "future" in (e.details() or ""):
                    raise StoreError(f"{self.name}: revision {getattr(request, 'revision', '?')} is newer "
                                     "than the current revision") from e
                if e.code() not in RETRYABLE or loop.time() + delay > deadline or (
                        mutation and not _never_applied(e)):
                    if e.code() in RETRYABLE:
                        self._failed_over(member)  # the next call tries another member, not this one again
                        raise self._unavailable(e, mutation) from e
                    raise StoreError(f"{self.name}: {e.code().name}: {e.details()}") from e
                log.debug("etcd %s: %s, trying the next member", self.name, e.details())
                if self._failed_over(member):  # every member tried: wait before the next round
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)

    async def _compacted(self) -> int:
        """The cluster's compacted revision: etcd reports it only to a watch that starts below it."""
        call = self._member().watch.Watch(metadata=METADATA, timeout=CALL_TIMEOUT)
        try:
            await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                key=b"\0", range_end=b"\0", start_revision=1)))
            while True:
                resp = await asyncio.wait_for(call.read(), 2.0)
                if not isinstance(resp, rpc.WatchResponse) or resp.events:
                    return 0
                if resp.compact_revision:
                    return resp.compact_revision - 1  # etcd's compact revision itself stays readable
        except (rpc.AioRpcError, asyncio.TimeoutError):
            return 0
        finally:
            call.cancel()

    async def _txn(self, compare, success, failure) -> rpc.TxnResponse:
        return await self._call("Txn", rpc.TxnRequest(compare=compare, success=success, failure=failure),
                                mutation=True)

    # ---- Store interface -----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._call("Range", rpc.RangeRequest(key=key.encode()))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        start = prefix.encode() or b"\0"
        end = _prefix_end(prefix.encode())
        items: list[KeyValue] = []
        while True:
            resp = await self._call("Range", rpc.RangeRequest(
                key=start, range_end=end, revision=max(revision, 0), limit=LIST_PAGE))
            # Later pages read at the revision of the first so the list is one consistent snapshot.
            revision = revision if revision > 0 else resp.header.revision
            items.extend(_kv(kv) for kv in resp.kvs)
            if not resp.more or not resp.kvs:
                return items, revision
            start = resp.kvs[-1].key + b"\0"

    async def create(self, key: str, value: bytes) -> KeyValue:
        k = key.encode()
        resp = await self._txn(
            [rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
            [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=bytes(value)))], [])
        if not resp.succeeded:
            raise KeyExists(key)
        rev = resp.header.revision
        return KeyValue(key, bytes(value), rev, rev)

    def _guard(self, k: bytes, expected: int | None):
        if expected is None:
            return rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.GREATER, create_revision=0)
        return rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=expected)

    @staticmethod
    def _failed(key: str, resp: rpc.TxnResponse):
        kvs = resp.responses[0].response_range.kvs if resp.responses else []
        if not kvs:
            return KeyNotFound(key)
        return RevisionConflict(key, _kv(kvs[0]))

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        k = key.encode()
        resp = await self._txn(
            [self._guard(k, expected_mod_revision)],
            [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=bytes(value), prev_kv=True))],
            [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))])
        if not resp.succeeded:
            raise self._failed(key, resp)
        prev = resp.responses[0].response_put.prev_kv
        return KeyValue(key, bytes(value), prev.create_revision, resp.header.revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        k = key.encode()
        resp = await self._txn(
            [self._guard(k, expected_mod_revision)],
            [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))])
        if not resp.succeeded:
            raise self._failed(key, resp)
        prevs = resp.responses[0].response_delete_range.prev_kvs
        if not prevs:  # deleted by someone else between compare and delete cannot happen in a txn
            raise KeyNotFound(key)
        return KeyValue(key, bytes(prevs[0].value), prevs[0].create_revision, resp.header.revision)

    async def current_revision(self) -> int:
        resp = await self._call("Range", rpc.RangeRequest(key=b"\0", count_only=True))
        return resp.header.revision

    async def compact(self, revision: int) -> None:
        try:
            await self._call("Compact", rpc.CompactionRequest(revision=revision, physical=False))
        except RevisionCompacted:
            pass  # already compacted at or past this revision

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        key = prefix.encode() or b"\0"
        end = _prefix_end(prefix.encode())
        after = after_revision
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = 0.05
        while True:
            member = self._member()
            call = member.watch.Watch(metadata=METADATA)
            try:
                await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                    key=key, range_end=end, start_revision=after + 1, prev_kv=True)))
                while True:
                    resp = await call.read()
                    if not isinstance(resp, rpc.WatchResponse):
                        raise StoreUnavailable(f"{self.name}: watch stream ended")
                    if resp.compact_revision:
                        raise RevisionCompacted(after, resp.compact_revision - 1)
                    if resp.canceled:
                        # e.g. the member lost its leader; resume elsewhere from where we are.
                        raise StoreUnavailable(f"{self.name}: watch canceled: {resp.cancel_reason}")
                    failing_since, delay = None, 0.05
                    for ev in resp.events:
                        kv = _kv(ev.kv)
                        prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
                        if ev.type == rpc.Event.DELETE:
                            # etcd's delete event carries an empty value; the interface wants the last one.
                            value = prev.value if prev else b""
                            create = prev.create_revision if prev else 0
                            yield WatchEvent("DELETE", KeyValue(kv.key, value, create, kv.mod_revision), prev)
                        else:
                            yield WatchEvent("PUT", kv, prev)
                        after = kv.mod_revision
            except (rpc.AioRpcError, StoreUnavailable) as e:
                if isinstance(e, rpc.AioRpcError) and e.code() not in RETRYABLE | {rpc.StatusCode.CANCELLED}:
                    raise StoreError(f"{self.name}: watch failed: {e.code().name}: {e.details()}") from e
                if self._closed:
                    raise StoreUnavailable(f"{self.name}: store is closed") from e
                now = loop.time()
                failing_since = failing_since or now
                if now - failing_since > RETRY_FOR:
                    if isinstance(e, rpc.AioRpcError):
                        raise self._unavailable(e) from e
                    raise
                log.debug("etcd %s: watch interrupted (%s); resuming after revision %d", self.name, e, after)
                if self._failed_over(member):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
            finally:
                call.cancel()

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(m.channel.close() for m in self._members))
