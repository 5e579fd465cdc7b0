"""Kubeconfig files, in the shape kubectl and the official clients read (clientcmd v1 Config)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from kfab.pki.ca import write_private


def _b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def kubeconfig(server_url: str, ca_cert_pem: bytes, client_cert_pem: bytes | None = None,
               client_key_pem: bytes | None = None, token: str | None = None,
               user: str = "admin", cluster: str = "kfab") -> dict:
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("a kubeconfig needs both the client certificate and its key, or neither")
    if client_cert_pem is None and token is None:
        raise ValueError("a kubeconfig needs credentials: a client certificate and key, or a token")
    credentials: dict = {}
    if client_cert_pem is not None:
        credentials["client-certificate-data"] = _b64(client_cert_pem)
        credentials["client-key-data"] = _b64(client_key_pem)
    if token is not None:
        credentials["token"] = token
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server_url,
                                                   "certificate-authority-data": _b64(ca_cert_pem)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }


def write_kubeconfig(path: Path, server_url: str, ca_cert_pem: bytes, client_cert_pem: bytes | None = None,
                     client_key_pem: bytes | None = None, token: str | None = None,
                     user: str = "admin", cluster: str = "kfab") -> Path:
    """Write a kubeconfig (mode 0600: it holds a private key or token)."""
    cfg = kubeconfig(server_url, ca_cert_pem, client_cert_pem, client_key_pem, token, user, cluster)
    path = Path(path)
    write_private(path, yaml.safe_dump(cfg, sort_keys=False).encode())
    return path


def server_url_of(path: Path) -> str | None:
    """The server URL of a kubeconfig's current context, or None when the file is absent or has none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
        current = cfg.get("current-context")
        contexts = {c["name"]: c["context"] for c in cfg.get("contexts") or []}
        clusters = {c["name"]: c["cluster"] for c in cfg.get("clusters") or []}
        cluster_name = contexts[current]["cluster"] if current in contexts else next(iter(clusters), None)
        return clusters[cluster_name]["server"] if cluster_name in clusters else None
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None
