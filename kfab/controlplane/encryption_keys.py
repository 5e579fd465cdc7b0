"""`kfab rotate-encryption-key --data-dir`: a new key for Secrets at rest, on a store no API server is using."""

from __future__ import annotations

from pathlib import Path

from kfab.pki.encryption import EncryptionConfig
from kfab.store.base import Store
from kfab.store.encryption import EncryptedStore, Transformer, reencrypt


async def rotate_key(inner: Store, path: Path) -> int:
    """A new write key first, every value rewritten with it, then the old keys dropped (kube's documented
    rotation, all steps at once since no API server runs). Returns the number of values rewritten.

    Interrupted between the steps, the file still lists every key that any stored value uses; running it again
    finishes the job.
    """
    config = EncryptionConfig.load(path).with_new_write_key()
    config.save(path)
    rewritten = await reencrypt(EncryptedStore(inner, Transformer(config)))
    config.without_old_keys().save(path)
    return rewritten
