"""TLS for the ingress: one SSLContext per TLS Secret, picked by SNI; a self-signed default certificate for
hosts without a usable Secret (as ingress-nginx's "Kubernetes Ingress Controller Fake Certificate").

Python's ssl loads certificates only from files: each Secret's pair is written to a private directory
(0700, files 0600), loaded, and removed at once.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile

from kfab.pki.ca import issue, new_ca

DEFAULT_CN = "Kubernetes Ingress Controller Fake Certificate"


class SecretError(Exception):
    """A TLS Secret that cannot serve: missing, wrong type, missing keys, or a pair that does not load."""


def _server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def context_from_pem(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = _server_context()
    with tempfile.TemporaryDirectory(prefix="kfab-ingress-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError) as e:
            raise SecretError(f"tls.crt and tls.key do not load as a certificate and its key: {e}") from None
    return ctx


def default_context() -> ssl.SSLContext:
    ca = new_ca("kfab-ingress")
    pair = issue(ca, DEFAULT_CN, server_names=("ingress.local",))
    return context_from_pem(pair.cert_pem, pair.key_pem)


def context_from_secret(secret: dict | None, namespace: str, name: str) -> ssl.SSLContext:
    if secret is None:
        raise SecretError(f'secret "{namespace}/{name}" not found')
    data = secret.get("data") or {}
    missing = [k for k in ("tls.crt", "tls.key") if not data.get(k)]
    if missing:
        raise SecretError(f'secret "{namespace}/{name}" has no {" or ".join(missing)}')
    try:
        cert, key = base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    except (ValueError, TypeError):
        raise SecretError(f'secret "{namespace}/{name}": tls.crt or tls.key is not base64') from None
    try:
        return context_from_pem(cert, key)
    except SecretError as e:
        raise SecretError(f'secret "{namespace}/{name}": {e}') from None
