"""State store: `open_store(url)` picks the backend from the URL.

    sqlite:///abs/path/state.db     one file, one API server (the embedded default)
    sqlite:relative/path.db
    etcd://127.0.0.1:2379,127.0.0.1:22379   one etcd cluster, several members to fail over between
    etcd+https://10.0.0.1:2379,...?cacert=/etc/kfab/etcd-ca.crt&cert=/etc/kfab/etcd-client.crt&key=...
                                            the same over TLS: members verified against cacert, and the
                                            client certificate cert/key (etcdctl's flag names) presented
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

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


ETCD_SCHEMES = ("etcd://", "etcd+https://")
TLS_PARAMS = ("cacert", "cert", "key")


def _etcd_parts(url: str) -> tuple[str, dict[str, str]]:
    scheme = next(s for s in ETCD_SCHEMES if url.startswith(s))
    rest, _, query = url[len(scheme):].partition("?")
    try:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=bool(query)).items()}
    except ValueError:
        raise BadStoreURL(f"store URL {url!r}: cannot read the parameters after '?'") from None
    unknown = sorted(set(params) - set(TLS_PARAMS))
    if unknown:
        raise BadStoreURL(f"store URL {url!r}: unknown parameter {unknown[0]!r} (known: {', '.join(TLS_PARAMS)})")
    if params and scheme == "etcd://":
        raise BadStoreURL(f"store URL {url!r}: TLS parameters need the etcd+https:// scheme")
    return rest, params


def etcd_tls(url: str):
    """EtcdTLS for an etcd+https:// URL (its files read now, so a wrong path fails before anything starts);
    None for etcd://."""
    from kfab.store.etcd import EtcdTLS

    if not url.startswith("etcd+https://"):
        return None
    _, params = _etcd_parts(url)
    if not params.get("cacert"):
        raise BadStoreURL(f"store URL {url!r}: etcd+https:// needs cacert=PATH (the CA the members' "
                          "certificates chain to)")
    if bool(params.get("cert")) != bool(params.get("key")):
        raise BadStoreURL(f"store URL {url!r}: a client certificate needs both cert=PATH and key=PATH")
    files = {}
    for name in TLS_PARAMS:
        if params.get(name):
            try:
                files[name] = Path(params[name]).read_bytes()
            except OSError as e:
                raise BadStoreURL(f"store URL {url!r}: {name}={params[name]}: cannot read: "
                                  f"{e.strerror or e}") from None
    return EtcdTLS(files["cacert"], files.get("cert"), files.get("key"))


def etcd_endpoints(url: str) -> list[tuple[str, int]]:
    rest = _etcd_parts(url)[0].strip("/")
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
    if url.startswith(ETCD_SCHEMES):
        from kfab.store.etcd import EtcdStore

        return await EtcdStore.open(etcd_endpoints(url), etcd_tls(url))
    raise BadStoreURL(f"store URL {url!r}: unknown scheme (expected sqlite:///path/state.db, "
                      "etcd://host:port[,host:port...] or etcd+https://host:port[,...]?cacert=&cert=&key=)")
