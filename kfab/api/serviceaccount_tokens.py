"""ServiceAccount tokens: bound, expiring JWTs signed with the cluster's service-account key (pki/sa.key).

Issued by the TokenRequest subresource (serviceaccounts/<name>/token), verified by the API server's
authenticator, with the claims kube-apiserver puts in them (pkg/serviceaccount/claims.go):

    iss  the issuer (--service-account-issuer; kubeadm's default below)     sub  system:serviceaccount:NS:NAME
    aud  the audiences asked for (default: the API server's own)            exp, iat, nbf, jti
    kubernetes.io: {namespace, serviceaccount: {name, uid}, pod: {name, uid} | secret: {name, uid}}

A token is accepted while it is unexpired, names one of the API server's audiences, and what it is bound
to still exists with the same uid: deleting the ServiceAccount (or the pod it was bound to) revokes it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kfab.api.auth import AUTHENTICATED, UserInfo
from kfab.objects.registry import REGISTRY
from kfab.store.base import Store

# kubeadm's --service-account-issuer: what in-cluster clients and OIDC discovery see.
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
# Extra user info kube-apiserver attaches to a pod-bound token's user (authentication/serviceaccount).
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
CREDENTIAL_ID_EXTRA = "authentication.kubernetes.io/credential-id"
LEEWAY = 60  # seconds of clock skew between API servers, as kube's validator allows for nbf/exp
# A pod (or account) being deleted keeps its tokens this long past its deletionTimestamp, as kube's validator:
# a terminating pod may still release its leases and report on its way out.
DELETION_GRACE = datetime.timedelta(seconds=60)


@dataclass(frozen=True)
class TokenClaims:
    namespace: str
    service_account: str
    service_account_uid: str
    audiences: tuple[str, ...]
    bound_kind: str = ""  # "Pod" | "Secret" | ""
    bound_name: str = ""
    bound_uid: str = ""
    jti: str = ""

    @property
    def username(self) -> str:
        return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.service_account}"


def service_account_user(claims: TokenClaims) -> UserInfo:
    """The user a verified token authenticates as (kube's serviceaccount.UserInfo)."""
    extra = []
    if claims.bound_kind == "Pod":
        extra += [(POD_NAME_EXTRA, (claims.bound_name,)), (POD_UID_EXTRA, (claims.bound_uid,))]
    if claims.jti:
        extra.append((CREDENTIAL_ID_EXTRA, (f"JTI={claims.jti}",)))
    groups = (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{claims.namespace}", AUTHENTICATED)
    return UserInfo(claims.username, groups, claims.service_account_uid, tuple(extra))


def load_signing_key(path: Path):
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as e:
        raise OSError(f"cannot read the service-account key {path}: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"{path}: service-account keys are ECDSA or RSA keys")
    return key


class TokenSigner:
    """Signs and verifies the cluster's ServiceAccount tokens (ES256 for the EC P-256 key kfab makes)."""

    def __init__(self, private_key, issuer: str = DEFAULT_ISSUER, api_audiences: tuple[str, ...] = ()):
        self._key = private_key
        self._public = private_key.public_key()
        self.algorithm = "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences) or (issuer,)
        # kube's key id: a hash of the public key, so verifiers can tell keys apart after a rotation.
        self.key_id = _key_id(self._public)

    @classmethod
    def from_file(cls, path: Path, issuer: str = DEFAULT_ISSUER) -> "TokenSigner":
        return cls(load_signing_key(path), issuer)

    def issue(self, claims: TokenClaims, expiration_seconds: int,
              now: datetime.datetime | None = None) -> tuple[str, datetime.datetime]:
        now = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)
        expiry = now + datetime.timedelta(seconds=expiration_seconds)
        private = {"namespace": claims.namespace,
                   "serviceaccount": {"name": claims.service_account, "uid": claims.service_account_uid}}
        if claims.bound_kind in ("Pod", "Secret"):
            private[claims.bound_kind.lower()] = {"name": claims.bound_name, "uid": claims.bound_uid}
        payload = {"iss": self.issuer, "sub": claims.username, "aud": list(claims.audiences),
                   "exp": int(expiry.timestamp()), "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
                   "jti": claims.jti or str(uuid.uuid4()), "kubernetes.io": private}
        token = jwt.encode(payload, self._key, algorithm=self.algorithm, headers={"kid": self.key_id})
        return token, expiry

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a token this cluster signed for one of its API audiences; None for anything else."""
        if token.count(".") != 2:
            return None
        try:
            payload = jwt.decode(token, self._public, algorithms=[self.algorithm], audience=list(self.api_audiences),
                                 issuer=self.issuer, leeway=LEEWAY,
                                 options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]})
        except jwt.PyJWTError:
            return None
        private = payload.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        sa = private.get("serviceaccount") or {}
        namespace, name = private.get("namespace"), sa.get("name")
        if not namespace or not name or payload["sub"] != f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}":
            return None
        bound_kind, bound = "", {}
        for kind in ("Pod", "Secret"):
            if isinstance(private.get(kind.lower()), dict):
                bound_kind, bound = kind, private[kind.lower()]
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        return TokenClaims(namespace, name, str(sa.get("uid") or ""), tuple(audiences), bound_kind,
                           str(bound.get("name") or ""), str(bound.get("uid") or ""), str(payload.get("jti") or ""))


def _key_id(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


_SERVICE_ACCOUNT = REGISTRY.by_kind("v1", "ServiceAccount")
_BOUND_KINDS = {"Pod": REGISTRY.by_kind("v1", "Pod"), "Secret": REGISTRY.by_kind("v1", "Secret")}


class ServiceAccountTokenAuthenticator:
    """Bearer tokens that are ServiceAccount JWTs -> their user, while the ServiceAccount (and the object the
    token is bound to) still exist with the uids the token names (kube's validator with its getters)."""

    def __init__(self, signer: TokenSigner, store: Store):
        self.signer = signer
        self.store = store

    async def __call__(self, token: str) -> UserInfo | None:
        claims = self.signer.verify(token)
        if claims is None:
            return None
        sa = await self._get(_SERVICE_ACCOUNT.store_key(claims.namespace, claims.service_account))
        if not _same_live_object(sa, claims.service_account_uid):
            return None
        if claims.bound_kind:
            bound = await self._get(_BOUND_KINDS[claims.bound_kind].store_key(claims.namespace, claims.bound_name))
            if not _same_live_object(bound, claims.bound_uid):
                return None
        return service_account_user(claims)

    async def _get(self, key: str) -> dict | None:
        kv = await self.store.get(key)
        return json.loads(kv.value) if kv is not None else None


def _same_live_object(obj: dict | None, uid: str) -> bool:
    meta = (obj or {}).get("metadata") or {}
    if obj is None or meta.get("uid") != uid:
        return False
    deleted = meta.get("deletionTimestamp")
    if not deleted:
        return True
    try:
        when = datetime.datetime.fromisoformat(deleted.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when + DELETION_GRACE > datetime.datetime.now(datetime.timezone.utc)
