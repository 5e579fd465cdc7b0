"""Encryption at rest of stored values, with kube-apiserver's EncryptionConfiguration semantics.

The configuration (kfab.pki.encryption) names the resources to encrypt and their keys; this module applies it.
Writes use the first key. A stored value names its key in a prefix, `k8s:enc:aesgcm:v1:<key name>:`, followed
by a 12-byte nonce and AES-GCM ciphertext (the store key is the authenticated data, so a value copied to
another key does not decrypt); reads pick the key by that prefix. A value without a `k8s:enc:` prefix is
plaintext, readable only while `identity` is listed (so Secrets written before encryption was turned on still
read). Values read with anything but the write key are stale: `reencrypt` rewrites them, which is how turning
encryption on and a key rotation finish.
"""

from __future__ import annotations

import secrets as random
from typing import AsyncIterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kfab.store.base import KeyNotFound, KeyValue, RevisionConflict, Store, StoreError, WatchEvent

PREFIX = b"k8s:enc:"
NONCE_SIZE = 12


class EncryptionError(StoreError):
    """A stored value no configured provider can read."""


class Transformer:
    """Encrypts and decrypts values of the configured resources' keys (`/registry/<resource>/...`)."""

    def __init__(self, config):  # a kfab.pki.encryption.EncryptionConfig
        self.by_resource: dict = {}
        for entry in config.entries:
            for resource in entry.resources:
                self.by_resource.setdefault(resource.split(".")[0], entry)

    def _entry(self, key: str):
        parts = key.split("/")
        if len(parts) <= 2 or parts[1] != "registry":
            return None
        return self.by_resource.get(parts[2]) or self.by_resource.get("*.*")  # `*.*`: every resource

    def encrypt(self, key: str, value: bytes) -> bytes:
        entry = self._entry(key)
        if entry is None or not entry.keys or entry.identity_first:
            return value
        write_key = entry.keys[0]
        nonce = random.token_bytes(NONCE_SIZE)
        sealed = AESGCM(write_key.secret).encrypt(nonce, value, key.encode())
        return PREFIX + b"aesgcm:v1:" + write_key.name.encode() + b":" + nonce + sealed

    def decrypt(self, key: str, stored: bytes) -> tuple[bytes, bool]:
        """(plaintext, stale): stale when it was not written with the current write key."""
        entry = self._entry(key)
        if not stored.startswith(PREFIX):
            if entry is not None and not entry.identity:
                raise EncryptionError(f"{key}: stored unencrypted and the identity provider is not configured")
            return stored, entry is not None and bool(entry.keys) and not entry.identity_first
        if entry is None:
            raise EncryptionError(f"{key}: stored encrypted but its resource has no encryption configured")
        rest = stored[len(PREFIX):]
        if not rest.startswith(b"aesgcm:v1:"):
            raise EncryptionError(f"{key}: stored with a provider this server does not have")
        name, sep, payload = rest[len(b"aesgcm:v1:"):].partition(b":")
        for i, candidate in enumerate(entry.keys):
            if candidate.name.encode() == name and sep:
                try:
                    plain = AESGCM(candidate.secret).decrypt(payload[:NONCE_SIZE], payload[NONCE_SIZE:], key.encode())
                except InvalidTag:
                    raise EncryptionError(f"{key}: does not decrypt with key {candidate.name}") from None
                return plain, i != 0 or entry.identity_first
        raise EncryptionError(f"{key}: encrypted with key {name.decode(errors='replace')}, which is not configured")


class EncryptedStore(Store):
    """A Store whose configured resources are encrypted on the way in and decrypted on the way out; every
    other key passes through untouched. Everything above it (API server, watch cache) sees plaintext."""

    def __init__(self, inner: Store, transformer: Transformer):
        self.inner = inner
        self.transformer = transformer

    def _open(self, kv: KeyValue | None) -> KeyValue | None:
        if kv is None or not kv.value:
            return kv
        plain, _ = self.transformer.decrypt(kv.key, kv.value)
        return KeyValue(kv.key, plain, kv.create_revision, kv.mod_revision) if plain is not kv.value else kv

    async def get(self, key: str) -> KeyValue | None:
        return self._open(await self.inner.get(key))

    async def list(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        kvs, rev = await self.inner.list(prefix, revision)
        return [self._open(kv) for kv in kvs], rev

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv = await self.inner.create(key, self.transformer.encrypt(key, value))
        return KeyValue(kv.key, value, kv.create_revision, kv.mod_revision)

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        try:
            kv = await self.inner.update(key, self.transformer.encrypt(key, value), expected_mod_revision)
        except RevisionConflict as e:
            raise RevisionConflict(key, self._open(e.current)) from None
        return KeyValue(kv.key, value, kv.create_revision, kv.mod_revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        try:
            return self._open(await self.inner.delete(key, expected_mod_revision))
        except RevisionConflict as e:
            raise RevisionConflict(key, self._open(e.current)) from None

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        events = self.inner.watch(prefix, after_revision)
        try:
            async for event in events:
                yield WatchEvent(event.type, self._open(event.kv), self._open(event.prev))
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name):  # backend extras (e.g. the SQLite path) stay reachable
        return getattr(self.inner, name)


async def reencrypt(store: EncryptedStore) -> int:
    """Rewrite every value of the configured resources not stored with the write key; the number rewritten.

    Compare-and-swap on each key's revision: a concurrent writer wins (its write used the write key already).
    """
    rewritten = 0
    for resource in store.transformer.by_resource:
        kvs, _ = await store.inner.list(f"/registry/{resource}/")
        for kv in kvs:
            plain, stale = store.transformer.decrypt(kv.key, kv.value)
            if not stale:
                continue
            try:
                await store.update(kv.key, plain, kv.mod_revision)
                rewritten += 1
            except (RevisionConflict, KeyNotFound):
                pass
    if rewritten:
        # The history still holds the rewritten values as they were: forget it, so that nothing stored needs the
        # old keys once they are dropped (a watch resumed from before now is told "too old" and lists again, as
        # after any compaction, instead of failing on a value no configured key opens).
        await store.compact(await store.current_revision())
    return rewritten


async def unreadable(store: EncryptedStore) -> list[str]:
    """The store keys of configured resources no configured key opens (another API server's key, a lost one)."""
    bad = []
    for resource in store.transformer.by_resource:
        kvs, _ = await store.inner.list(f"/registry/{resource}/")
        for kv in kvs:
            try:
                store.transformer.decrypt(kv.key, kv.value)
            except EncryptionError:
                bad.append(kv.key)
    return bad
