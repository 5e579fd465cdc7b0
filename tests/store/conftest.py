"""Fixtures for the store tests: one shared behavioural suite runs against SQLite and a real etcd cluster."""

import asyncio
import uuid

import pytest

from kfab.store import open_store
from kfab.pki.encryption import EncryptionConfig, Key, ResourceProviders
from kfab.store.encryption import EncryptedStore, Transformer
from tests.etcd_cluster import EtcdCluster

ENCRYPTED = "encrypted+"


@pytest.fixture(scope="session")
def etcd_cluster():
    with EtcdCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def etcd_tls_cluster():
    """Clients must speak TLS and present a certificate (as the state-store role runs etcd)."""
    with EtcdCluster(tls=True) as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "sqlite-encrypted", "etcd", "etcd-tls"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/state.db"
    if request.param == "sqlite-encrypted":  # every key through the encryption-at-rest wrapper
        return f"{ENCRYPTED}sqlite://{tmp_path}/state.db"
    if request.param == "etcd-tls":
        return request.getfixturevalue("etcd_tls_cluster").url
    return request.getfixturevalue("etcd_cluster").url


@pytest.fixture
def prefix():
    """A key prefix of its own, so tests sharing one etcd cluster never see each other's keys."""
    return f"/registry/t{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def with_store(store_url):
    """with_store(async fn(store)): open the store, run fn in a fresh event loop, always close it."""

    def run(fn, timeout: float = 60):
        async def main():
            store = await open_store(store_url.removeprefix(ENCRYPTED))
            if store_url.startswith(ENCRYPTED):
                config = EncryptionConfig([ResourceProviders(["*.*"], [Key.new("key1")])])
                store = EncryptedStore(store, Transformer(config))
            try:
                return await asyncio.wait_for(fn(store), timeout)
            finally:
                await store.close()

        return asyncio.run(main())

    return run
