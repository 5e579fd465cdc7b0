"""Authentication: who is calling (bearer token or verified client certificate), and what they ask to do.

Mirrors kube-apiserver: `--token-auth-file` CSV tokens, x509 client certs (CN = user, O = groups), every
authenticated user in `system:authenticated`, and request attributes derived from the URL the way
k8s.io/apiserver's RequestInfoFactory does, so RBAC rules written for Kubernetes mean the same here.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Sequence
from urllib.parse import parse_qs

from cryptography import x509

from kfab.objects.errors import APIError

AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, values) pairs; only impersonation sets them


@dataclass(frozen=True)
class RequestAttributes:
    """What a request asks to do, as the authorizer sees it (k8s.io/apiserver authorizer.Attributes)."""

    user: UserInfo
    verb: str  # get/list/watch/create/update/patch/delete/deletecollection; lowercase HTTP method if non-resource
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


class TokenFileError(ValueError):
    """The token file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class _TokenEntry:
    token: str
    user: UserInfo


def load_token_file(path: Path) -> dict[bytes, _TokenEntry]:
    """Parse a kube-apiserver `--token-auth-file`: `token,user,uid[,"group1,group2"]` per line.

    Stricter than kube-apiserver (which only warns) on empty and duplicate tokens: those are mistakes.
    Keyed by SHA-256 of the token so a lookup's timing says nothing about the token's characters.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise TokenFileError(f"token file {path}: cannot read: {e.strerror}") from None
    entries: dict[bytes, _TokenEntry] = {}
    reader = csv.reader(text.splitlines(), strict=True)
    try:
        for record in reader:
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) < 3:
                raise TokenFileError(f"token file {path}, line {line}: must have at least 3 columns "
                                     f"(token, user name, user uid), found {len(record)}")
            token, name, uid = record[0].strip(), record[1].strip(), record[2].strip()
            if not token:
                raise TokenFileError(f"token file {path}, line {line}: the token (column 1) is empty")
            if not name:
                raise TokenFileError(f"token file {path}, line {line}: the user name (column 2) is empty")
            groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
            digest = hashlib.sha256(token.encode()).digest()
            if digest in entries:
                raise TokenFileError(f"token file {path}, line {line}: duplicate token "
                                     f"(already given to user {entries[digest].user.name!r})")
            entries[digest] = _TokenEntry(token, UserInfo(name, groups, uid))
    except csv.Error as e:
        raise TokenFileError(f"token file {path}, line {reader.line_num}: {e}") from None
    return entries


# token -> its user, or None when the token is not one this authenticator knows.
TokenAuthenticator = Callable[[str], Awaitable["UserInfo | None"]]


def _bearer_token(header: str) -> str:
    # As kube-apiserver's bearer token authenticator: "Bearer <token>", scheme case-insensitive.
    parts = header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return ""
    return parts[1]


def _with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.groups + (AUTHENTICATED,), user.uid, user.extra)


def _load_cas(client_ca) -> list[x509.Certificate]:
    if client_ca is None:
        return []
    if isinstance(client_ca, (str, Path)):
        client_ca = Path(client_ca).read_bytes()
    return x509.load_pem_x509_certificates(client_ca)


class Authenticator:
    """Who sent a request: a client certificate signed by `client_ca`, else a bearer token from `tokens_file`
or one a `token_authenticators` entry accepts (ServiceAccount JWTs: they need store reads, hence async).

    `client_ca`: path or PEM bytes of the CA(s) client certificates must chain to (the TLS context already
    refuses others at the handshake; checking again here keeps a misconfigured context from letting any
    certificate in). None: client certificates are not accepted.
    """

    def __init__(self, tokens_file: Path | None = None, client_ca: Path | bytes | None = None,
                 token_authenticators: Sequence[TokenAuthenticator] = ()):
        self._tokens = load_token_file(tokens_file) if tokens_file else {}
        self._token_authenticators = tuple(token_authenticators)
        self._cas = _load_cas(client_ca)
        # DER -> (user, validity window), so each certificate is parsed and verified once
        self._cert_users: dict[bytes, tuple[UserInfo | None, datetime.datetime, datetime.datetime]] = {}

    def authenticate(self, request) -> UserInfo | None:
        """The user, or None (the caller answers 401). A wrong token is never silently anonymous."""
        user = self._from_certificate(request)
        if user is None:
            user = self._from_token(request.headers.get("Authorization", ""))
        return _with_authenticated(user) if user is not None else None

    async def authenticate_request(self, request) -> UserInfo | None:
        """authenticate(), then the asynchronous token authenticators for a bearer token nobody else knew."""
        user = self.authenticate(request)
        if user is not None or not self._token_authenticators:
            return user
        token = _bearer_token(request.headers.get("Authorization", ""))
        for authenticate_token in self._token_authenticators if token else ():
            user = await authenticate_token(token)
            if user is not None:
                return _with_authenticated(user)
        return None

    def user_for_token(self, token: str) -> UserInfo | None:
        entry = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if entry is None or not hmac.compare_digest(entry.token.encode(), token.encode()):
            return None
        return entry.user

    def _from_token(self, header: str) -> UserInfo | None:
        token = _bearer_token(header)
        return self.user_for_token(token) if token else None

    def _from_certificate(self, request) -> UserInfo | None:
        if not self._cas:
            return None
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return None
        if der not in self._cert_users:
            if len(self._cert_users) > 10000:  # bound the cache; certs are few in practice
                self._cert_users.clear()
            self._cert_users[der] = self._verify(der)
        user, not_before, not_after = self._cert_users[der]
        now = datetime.datetime.now(datetime.timezone.utc)
        return user if not_before <= now <= not_after else None

    def _verify(self, der: bytes):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:  # the TLS layer accepted it, so this is unlikely; still not a user
            never = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
            return (None, never, never)
        window = (cert.not_valid_before_utc, cert.not_valid_after_utc)
        if not any(_issued_by(cert, ca) for ca in self._cas):
            return (None, *window)
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if not cn or not cn[0].value:
            return (None, *window)
        orgs = tuple(str(o.value) for o in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME))
        return (UserInfo(str(cn[0].value), orgs), *window)


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except Exception:  # InvalidSignature, ValueError (issuer mismatch), TypeError (key type)
        return False


# --- request attributes ------------------------------------------------------------------------------

_API_PREFIXES = ("api", "apis")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool, which kube uses for ?watch=


def request_attributes(user: UserInfo, method: str, path: str, query: str | dict = "") -> RequestAttributes:
    """Attributes of a request, as k8s.io/apiserver's RequestInfoFactory derives them from method + URL.

    /api/v1/namespaces/ns/pods -> list pods in ns; DELETE without a name -> deletecollection; ?watch=true
    -> watch; /api/v1/namespaces/foo -> namespace "foo" (so a RoleBinding in foo can grant get on it);
    anything outside /api and /apis (or /api/v1 itself) is a non-resource request with the HTTP method as verb.
    """
    params = parse_qs(query) if isinstance(query, str) else {k: v if isinstance(v, list) else [v]
                                                             for k, v in query.items()}
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    non_resource = RequestAttributes(user, method.lower(), path=path, resource_request=False)
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return non_resource
    group = ""
    rest = parts[1:]
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    rest = rest[1:]  # the version
    if rest[0] in ("watch", "proxy"):
        if len(rest) < 2:
            return non_resource
        verb, rest = rest[0], rest[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if params.get("watch", [""])[-1] in _TRUE else "list"
        name = _exact_name(params.get("fieldSelector", [""])[-1])
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(user, verb, group, resource, subresource, namespace, name, path, True)


def _exact_name(field_selector: str) -> str:
    """`metadata.name=x` (or ==) in a field selector narrows a list/watch to one name, as in Kubernetes."""
    for term in field_selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                value = value.strip()
                return value if value and "/" not in value and value not in (".", "..") else ""
    return ""


def forbidden_error(attrs: RequestAttributes, reason: str = "") -> APIError:
    """403 worded as kube-apiserver words it (responsewriters.ForbiddenStatusError)."""
    user = attrs.user.name
    if not attrs.resource_request:
        return APIError(403, "Forbidden", f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
                        + (f": {reason}" if reason else ""))
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        msg = (f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" '
               f'in the namespace "{attrs.namespace}"')
    else:
        msg = (f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" '
               f'at the cluster scope')
    if reason:
        msg = f"{msg}: {reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    prefix = f'{qualified} "{attrs.name}" is forbidden' if attrs.name else f"{qualified} is forbidden"
    return APIError(403, "Forbidden", f"{prefix}: {msg}", name=attrs.name or None, group=attrs.api_group or None,
                    kind=attrs.resource)
