"""Store URLs: both forms of SQLite path, etcd endpoint lists, and clear errors naming the bad URL."""

import asyncio

import pytest

from kfab.store import BadStoreURL, etcd_endpoints, open_store, sqlite_path


def test_sqlite_urls_absolute_and_relative(tmp_path, monkeypatch):
    assert sqlite_path(f"sqlite://{tmp_path}/state.db") == tmp_path / "state.db"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert str(sqlite_path("sqlite:data/state.db")) == "data/state.db"


def test_etcd_url_lists_every_member():
    assert etcd_endpoints("etcd://127.0.0.1:2379,10.0.0.2:22379") == [("127.0.0.1", 2379), ("10.0.0.2", 22379)]
    assert etcd_endpoints("etcd://etcd-1:2379/") == [("etcd-1", 2379)]


@pytest.mark.parametrize("url, says", [
    ("postgres://db/kfab", "unknown scheme"),
    ("sqlite://host/state.db", "host part"),
    ("sqlite:", "no database file"),
    ("sqlite:///no/such/dir/state.db", "/no/such/dir"),
    ("etcd://", "no etcd endpoints"),
    ("etcd://127.0.0.1", "not host:port"),
    ("etcd://127.0.0.1:2379,127.0.0.1:http", "'127.0.0.1:http'"),
])
def test_bad_store_urls_are_rejected_with_the_url_named(url, says):
    with pytest.raises(BadStoreURL) as err:
        asyncio.run(open_store(url))
    assert repr(url) in str(err.value) and says in str(err.value)
