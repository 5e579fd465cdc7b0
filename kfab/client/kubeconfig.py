"""Read a kubeconfig (clientcmd v1 Config) into what an HTTPS client needs: server URL, TLS context, headers.

Supports what kfab and kubectl users put there: certificate-authority(-data), client-certificate(-data) +
client-key(-data), token / tokenFile, insecure-skip-tls-verify, and the current context (or a named one).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used; the message names the file and the field."""


@dataclass
class ClientConfig:
    server: str
    ssl_context: ssl.SSLContext | bool
    headers: dict[str, str] = field(default_factory=dict)
    user: str = ""
    ca_pem: bytes | None = None  # the cluster CA the kubeconfig trusts (the root-ca-cert-publisher hands it out)


def _data_or_file(entry: dict, key: str, base: Path, path: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        try:
            return base64.b64decode("".join(str(entry[f"{key}-data"]).split()), validate=True)
        except ValueError as e:
            raise KubeconfigError(f"{path}: {key}-data is not valid base64: {e}") from None
    if entry.get(key):
        file = Path(entry[key])
        file = file if file.is_absolute() else base / file
        try:
            return file.read_bytes()
        except OSError as e:
            raise KubeconfigError(f"{path}: cannot read {key} {file}: {e.strerror}") from None
    return None


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads client certificates from files: write them to a private temporary directory briefly.
    with tempfile.TemporaryDirectory(prefix="kfab-client-") as tmp:
        cert_file, key_file = Path(tmp, "client.crt"), Path(tmp, "client.key")
        for file, data in ((cert_file, cert), (key_file, key)):
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        ctx.load_cert_chain(cert_file, key_file)


def load_kubeconfig(path: str | Path, context: str | None = None) -> ClientConfig:
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    contexts = {c.get("name"): c.get("context") or {} for c in cfg.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in cfg.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in cfg.get("users") or []}
    name = context or cfg.get("current-context")
    if name not in contexts:
        raise KubeconfigError(f"{path}: context {name!r} not found (contexts: {sorted(map(str, contexts))})")
    ctx_entry = contexts[name]
    cluster = clusters.get(ctx_entry.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise KubeconfigError(f"{path}: context {name!r} names cluster {ctx_entry.get('cluster')!r}, "
                              f"which is missing or has no server")
    user = users.get(ctx_entry.get("user"), {})
    base = path.parent

    server = str(cluster["server"]).rstrip("/")
    ssl_ctx: ssl.SSLContext | bool = True
    ca = None
    if server.startswith("https://"):
        if cluster.get("insecure-skip-tls-verify"):
            ssl_ctx = ssl.create_default_context()
            ssl_ctx.check_hostname = False
            ssl_ctx.verify_mode = ssl.CERT_NONE
        else:
            ca = _data_or_file(cluster, "certificate-authority", base, path)
            ssl_ctx = ssl.create_default_context(cadata=ca.decode() if ca else None)
        cert = _data_or_file(user, "client-certificate", base, path)
        key = _data_or_file(user, "client-key", base, path)
        if (cert is None) != (key is None):
            raise KubeconfigError(f"{path}: user {ctx_entry.get('user')!r} needs both client-certificate "
                                  "and client-key")
        if cert is not None:
            try:
                _load_cert_chain(ssl_ctx, cert, key)
            except ssl.SSLError as e:
                raise KubeconfigError(f"{path}: client certificate/key of user {ctx_entry.get('user')!r} "
                                      f"cannot be used: {e}") from None
    headers = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = (base / user["tokenFile"]).read_text().strip()
        except OSError as e:
            raise KubeconfigError(f"{path}: cannot read tokenFile: {e.strerror}") from None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return ClientConfig(server=server, ssl_context=ssl_ctx, headers=headers, user=str(ctx_entry.get("user", "")),
                        ca_pem=ca)
