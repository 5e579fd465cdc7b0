"""serviceaccounts/<name>/token: the TokenRequest subresource (`kubectl create token`, the node agent's
projected token volumes), as kube-apiserver's registry/core/serviceaccount/storage/token.go answers it.

A TokenRequest asks for a token of one ServiceAccount, for some audiences, for some seconds, optionally
bound to a Pod or Secret of the namespace (the token dies with it). Nodes (group system:nodes) may only
ask for tokens bound to a pod running on them with that ServiceAccount, as the NodeRestriction plugin
allows.
"""

from __future__ import annotations

from aiohttp import web

from kfab.api.auth import UserInfo
from kfab.api.routing import ResourcePath
from kfab.api.serialize import content_type, dump, negotiate, parse_object, read_body
from kfab.api.serviceaccount_tokens import TokenClaims, TokenSigner
from kfab.api.storage import ResourceStorage
from kfab.api.strategy import now
from kfab.objects.errors import APIError, Cause, bad_request, invalid
from kfab.objects.registry import REGISTRY
from kfab.objects.meta import spec_of

DEFAULT_EXPIRATION = 3600  # TokenRequestSpec.expirationSeconds' default
MIN_EXPIRATION = 600  # validation: "may not specify a duration less than 10 minutes"
MAX_EXPIRATION = 1 << 32
NODES_GROUP = "system:nodes"
_BOUND_KINDS = {"Pod": REGISTRY.by_kind("v1", "Pod"), "Secret": REGISTRY.by_kind("v1", "Secret")}
_GROUP = "authentication.k8s.io"


class TokenRequests:
    def __init__(self, storage: ResourceStorage, signer: TokenSigner | None, body_limit: int):
        self.storage = storage
        self.signer = signer
        self.body_limit = body_limit

    async def create(self, request: web.Request, rp: ResourcePath) -> web.Response:
        if self.signer is None:
            raise APIError(503, "ServiceUnavailable", "this API server has no service-account signing key configured")
        body = parse_object(await read_body(request, self.body_limit), content_type(request))
        if not isinstance(body, dict) or body.get("kind", "TokenRequest") != "TokenRequest":
            raise bad_request("the body of serviceaccounts/token must be an authentication.k8s.io/v1 TokenRequest")
        spec = dict(spec_of(body))
        expiration = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
        spec["expirationSeconds"] = expiration
        spec["audiences"] = list(spec.get("audiences") or self.signer.api_audiences)
        _validate(rp.name, spec)
        sa = await self.storage.get(rp.rt, rp.namespace, rp.name)
        bound_kind, bound_name, bound_uid, bound_pod = await self._bound_object(rp, spec.get("boundObjectRef"))
        _node_may_request(request["user"], rp, bound_pod)
        if bound_kind:
            spec["boundObjectRef"] = dict(spec["boundObjectRef"], uid=bound_uid)  # filled in, as upstream answers
        claims = TokenClaims(rp.namespace, rp.name, sa["metadata"]["uid"], tuple(spec["audiences"]),
                             bound_kind, bound_name, bound_uid)
        token, expiry = self.signer.issue(claims, expiration)
        answer = {
            "kind": "TokenRequest", "apiVersion": f"{_GROUP}/v1",
            "metadata": {"name": rp.name, "namespace": rp.namespace, "creationTimestamp": now()},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        return dump(answer, negotiate(request), 201)

    async def _bound_object(self, rp: ResourcePath, ref) -> tuple[str, str, str, dict | None]:
        """(kind, name, uid, pod or None) of the object the token is bound to; empty when it is unbound."""
        if not ref:
            return "", "", "", None
        kind, name, api_version = ref.get("kind"), ref.get("name"), ref.get("apiVersion") or "v1"
        if kind not in _BOUND_KINDS or api_version != "v1":
            raise bad_request(f"cannot bind token to object of type {api_version}, Kind={kind}")
        obj = await self.storage.get(_BOUND_KINDS[kind], rp.namespace, name)
        uid = obj["metadata"]["uid"]
        if kind == "Pod" and spec_of(obj).get("serviceAccountName") != rp.name:
            raise bad_request(f'cannot bind token for serviceaccount "{rp.name}" to pod running with different '
                              "serviceaccount name.")
        if ref.get("uid") and ref["uid"] != uid:
            raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound '
                           f"object reference ({ref['uid']}) does not match the UID in record. The object might "
                           "have been deleted and then recreated", name=name, kind=kind)
        return kind, name, uid, obj if kind == "Pod" else None


def _validate(name: str, spec: dict) -> None:
    seconds = spec["expirationSeconds"]
    causes = []
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append(Cause("spec.expirationSeconds", f"Invalid value: {seconds!r}: must be an integer"))
    elif seconds < MIN_EXPIRATION:
        causes.append(Cause("spec.expirationSeconds",
                            f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"))
    elif seconds > MAX_EXPIRATION:
        causes.append(Cause("spec.expirationSeconds",
                            f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"))
    if causes:
        raise invalid("TokenRequest", name, causes, _GROUP)


def _node_may_request(user: UserInfo, rp: ResourcePath, pod: dict | None) -> None:
    """NodeRestriction: a node gets tokens only for the ServiceAccounts of pods bound to it."""
    if NODES_GROUP not in user.groups or not user.name.startswith("system:node:"):
        return
    node = user.name[len("system:node:"):]
    if pod is None:
        reason = "node requested token not bound to a pod"
    elif spec_of(pod).get("nodeName") != node:
        reason = "node requested token bound to a pod scheduled on a different node"
    else:
        return
    raise APIError(403, "Forbidden", f'serviceaccounts "{rp.name}" is forbidden: {reason}', name=rp.name,
                   kind="serviceaccounts")
