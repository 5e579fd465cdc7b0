"""Encryption at rest: EncryptionConfiguration semantics (which key writes, which read, identity) and the
rotation steps, on the values the store keeps."""

from __future__ import annotations

import pytest

from kfab.pki.encryption import EncryptionConfig, EncryptionConfigError, ensure_config
from kfab.store.encryption import EncryptionError, Transformer

KEY = "/registry/secrets/default/db"


def test_secrets_are_written_with_the_first_key_and_other_resources_stay_plain():
    config = EncryptionConfig.new()
    t = Transformer(config)
    stored = t.encrypt(KEY, b'{"data":{"pw":"c2VjcmV0"}}')
    assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:") and b"c2VjcmV0" not in stored
    assert t.decrypt(KEY, stored) == (b'{"data":{"pw":"c2VjcmV0"}}', False)
    assert t.encrypt("/registry/configmaps/default/x", b"{}") == b"{}"
    # the store key is authenticated: a value moved to another Secret's key does not decrypt
    with pytest.raises(EncryptionError):
        t.decrypt("/registry/secrets/default/other", stored)


def test_plaintext_reads_while_identity_is_listed_and_is_stale():
    config = EncryptionConfig.new()
    assert Transformer(config).decrypt(KEY, b"{}") == (b"{}", True)
    config.entries[0].identity = False
    with pytest.raises(EncryptionError, match="identity provider is not configured"):
        Transformer(config).decrypt(KEY, b"{}")


def test_rotation_steps_keep_every_value_readable(tmp_path):
    path = tmp_path / "encryption-config.yaml"
    first = ensure_config(path)
    assert path.stat().st_mode & 0o777 == 0o600
    old_value = Transformer(first).encrypt(KEY, b"v")
    rotating = first.with_new_write_key()
    assert [k.name for k in rotating.entries[0].keys] == ["key2", "key1"]
    reading = rotating.with_write_key_reading_only()
    assert Transformer(reading).encrypt(KEY, b"v").startswith(b"k8s:enc:aesgcm:v1:key1:"), "key2 only reads"
    new_value = Transformer(rotating).encrypt(KEY, b"v")
    assert Transformer(reading).decrypt(KEY, new_value) == (b"v", True)
    assert Transformer(rotating).decrypt(KEY, old_value) == (b"v", True), "old values are stale, still readable"
    final = rotating.without_old_keys()
    final.save(path)
    assert [k.name for k in EncryptionConfig.load(path).entries[0].keys] == ["key2"]
    assert Transformer(final).decrypt(KEY, new_value) == (b"v", False)
    with pytest.raises(EncryptionError, match="key1, which is not configured"):
        Transformer(final).decrypt(KEY, old_value)


def test_identity_first_turns_encryption_off_but_still_reads_encrypted_values():
    config = EncryptionConfig.new()
    sealed = Transformer(config).encrypt(KEY, b"v")
    config.entries[0].identity_first = True
    assert Transformer(config).encrypt(KEY, b"v") == b"v"
    assert Transformer(config).decrypt(KEY, sealed) == (b"v", True)


def test_a_broken_configuration_names_its_file_and_entry(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "- resources: [secrets]\n  providers:\n  - aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}\n")
    with pytest.raises(EncryptionConfigError, match=r"bad.yaml: resources\[0\].providers\[0\].aesgcm.keys\[0\]: "
                                                    "secret must be 16, 24 or 32 bytes, got 5"):
        EncryptionConfig.load(path)


def test_reencrypting_forgets_history_so_the_old_key_can_go(tmp_path):
    """After the new write key rewrote every Secret, no stored row (current or history) needs the old key: a watch
    from before the rewrite is told its revision is compacted, and with the old key dropped everything reads."""
    import asyncio
    import sqlite3

    from kfab.store.base import RevisionCompacted
    from kfab.store.encryption import EncryptedStore, reencrypt
    from kfab.store.sqlite import SQLiteStore

    async def scenario():
        inner = await SQLiteStore.open(tmp_path / "state.db")
        old = EncryptionConfig.new()
        store = EncryptedStore(inner, Transformer(old))
        await store.create("/registry/secrets/default/db", b'{"data":{"v":"c2VjcmV0"}}')
        await store.update("/registry/secrets/default/db", b'{"data":{"v":"bmV3"}}')
        before = await store.current_revision()
        rotated = old.with_new_write_key()
        assert await reencrypt(EncryptedStore(inner, Transformer(rotated))) == 1
        final = EncryptedStore(inner, Transformer(rotated.without_old_keys()))
        (kv,), _ = await final.list("/registry/secrets/")
        assert kv.value == b'{"data":{"v":"bmV3"}}'
        with pytest.raises(RevisionCompacted):
            async for _ in final.watch("/registry/secrets/", before - 1):
                break
        await inner.close()

    asyncio.run(scenario())
    db = sqlite3.connect(tmp_path / "state.db")
    rows = [bytes(v) for table in ("kv", "log") for (v,) in db.execute(f"SELECT value FROM {table}") if v]
    db.close()
    assert rows and all(b":key2:" in r for r in rows if r.startswith(b"k8s:enc:"))
    assert not any(b":key1:" in r for r in rows), "a row sealed with the dropped key is still stored"
