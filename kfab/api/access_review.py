"""SelfSubjectAccessReview (authorization.k8s.io/v1): "may I do this?", the question `kubectl auth can-i` asks.

Never stored: the API answers the review it was sent, with `status` filled in.
"""

from __future__ import annotations

import copy

from kfab.api.auth import RequestAttributes, UserInfo
from kfab.objects.errors import Cause, bad_request, invalid
from kfab.objects.meta import meta_of

KIND = "SelfSubjectAccessReview"
API_VERSION = "authorization.k8s.io/v1"


def review_attributes(user: UserInfo, spec: dict) -> RequestAttributes:
    """The request a review's spec describes; APIError 422 unless exactly one kind of attributes is given."""
    res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non_res is None):
        raise invalid(KIND, "", [Cause("spec.resourceAttributes",
                                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")],
                      group="authorization.k8s.io")
    attrs = res if res is not None else non_res
    if not isinstance(attrs, dict):
        field = "spec.resourceAttributes" if res is not None else "spec.nonResourceAttributes"
        raise invalid(KIND, "", [Cause(field, "must be an object")], group="authorization.k8s.io")
    for key, value in attrs.items():
        if value is not None and not isinstance(value, str) and key != "fieldSelector" and key != "labelSelector":
            raise bad_request(f"{KIND} in version \"v1\" cannot be handled: "
                              f"spec.{'resourceAttributes' if res is not None else 'nonResourceAttributes'}.{key}: "
                              f"expected a string, got {type(value).__name__}")
    if res is not None:
        return RequestAttributes(
            user=user, verb=res.get("verb") or "", api_group=res.get("group") or "",
            resource=res.get("resource") or "", subresource=res.get("subresource") or "",
            namespace=res.get("namespace") or "", name=res.get("name") or "", resource_request=True)
    return RequestAttributes(user=user, verb=non_res.get("verb") or "", path=non_res.get("path") or "",
                             resource_request=False)


async def self_subject_access_review(authorizer, user: UserInfo, body: dict) -> dict:
    """The review with status.allowed/status.reason filled in for `user` (the caller: "self")."""
    if not isinstance(body, dict):
        raise bad_request(f"{KIND}: the request body must be a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != KIND) or (api_version and api_version != API_VERSION):
        raise bad_request(f"the body is a {api_version}/{kind}; this endpoint takes {API_VERSION}/{KIND}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise invalid(KIND, "", [Cause("spec", "Required value", "FieldValueRequired")], group="authorization.k8s.io")
    allowed, reason = await authorizer.authorize(review_attributes(user, spec))
    review = {
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": copy.deepcopy(meta_of(body)),
        "spec": copy.deepcopy(spec),
        "status": {"allowed": bool(allowed)},
    }
    review["metadata"].setdefault("creationTimestamp", None)
    if reason:
        review["status"]["reason"] = reason
    return review


def self_subject_rules_review(authorizer, user: UserInfo, body: dict) -> dict:
    """SelfSubjectRulesReview (`kubectl auth can-i --list`): the caller's rules in spec.namespace."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise invalid("SelfSubjectRulesReview", "", [Cause("spec", "Required value", "FieldValueRequired")],
                      group="authorization.k8s.io")
    namespace = body["spec"].get("namespace") or ""
    rules, incomplete = authorizer.rules_for(user, namespace)
    resource_rules, non_resource_rules = [], []
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(r.get("verbs") or []),
                                       "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            rr = {"verbs": list(r.get("verbs") or []), "apiGroups": list(r.get("apiGroups") or []),
                  "resources": list(r.get("resources") or [])}
            if r.get("resourceNames"):
                rr["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(rr)
    status = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete}
    if incomplete:
        status["evaluationError"] = "a binding refers to a role that does not exist"
    return {"kind": "SelfSubjectRulesReview", "apiVersion": API_VERSION,
            "metadata": {"creationTimestamp": None}, "spec": {"namespace": namespace}, "status": status}


def self_subject_review(user: UserInfo, body: dict | None = None) -> dict:
    """SelfSubjectReview (authentication.k8s.io/v1, `kubectl auth whoami`): who the server thinks the caller is."""
    if body is not None and not isinstance(body, dict):
        raise bad_request("SelfSubjectReview: the request body must be a JSON object")
    user_info: dict = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        user_info["uid"] = user.uid
    if user.extra:
        user_info["extra"] = {key: list(values) for key, values in user.extra}
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": user_info}}
