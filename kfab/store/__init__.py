"""State store: `open_store(url)` picks the backend from the URL.

    sqlite:///abs/path/state.db     one file, one API server (the embedded default)
    sqlite:relative/path.db
    etcd://127.0.0.1:2379,127.0.0.1:22379   one etcd cluster, several members to fail over between
"""

from __future__ import annotations

from pathlib import Path

from kfab.store.base import (  # noqa: F401  (re-exported for callers)
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


class BadStoreURL(ValueError):
    pass


def sqlite_path(url: str) -> Path:
    rest = url[len("sqlite:"):]
    if rest.startswith("///"):
        rest = rest[2:]
    elif rest.startswith("//"):
        raise BadStoreURL(f"store URL {url!r}: use sqlite:///absolute/path.db or sqlite:relative/path.db "
                          "(a host part is not supported)")
    if not rest or rest.endswith("/"):
        raise BadStoreURL(f"store URL {url!r}: no database file path")
    path = Path(rest)
    if not path.parent.is_dir():
        raise BadStoreURL(f"store URL {url!r}: directory {str(path.parent)!r} does not exist")
    return path


def etcd_endpoints(url: str) -> list[tuple[str, int]]:
    rest = url[len("etcd://"):].strip("/")
    if not rest:
        raise BadStoreURL(f"store URL {url!r}: no etcd endpoints (etcd://host:port[,host:port...])")
    endpoints = []
    for part in rest.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BadStoreURL(f"store URL {url!r}: endpoint {part!r} is not host:port")
        endpoints.append((host.strip("[]"), int(port)))
    return endpoints


async def open_store(url: str) -> Store:
    """Open the store a URL names; BadStoreURL (naming the URL) when it is malformed."""
    if url.startswith("sqlite:"):
        from kfab.store.sqlite import SQLiteStore

        return await SQLiteStore.open(sqlite_path(url))
    if url.startswith("etcd://"):
        from kfab.store.etcd import EtcdStore

        return await EtcdStore.open(etcd_endpoints(url))
    raise BadStoreURL(f"store URL {url!r}: unknown scheme (expected sqlite:///path/state.db or "
                      "etcd://host:port[,host:port...])")
