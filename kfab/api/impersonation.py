"""User impersonation (`kubectl --as=alice --as-group=dev`), as kube-apiserver's impersonation filter does it.

A caller allowed the `impersonate` verb on users/groups/serviceaccounts/uids/userextras (cluster-admin is)
may act as another user: the request is then authorized, and recorded, as that user. This is how an admin
checks someone else's access: `kubectl auth can-i list pods --as=alice`.
"""

from __future__ import annotations

from urllib.parse import unquote

from kfab.api.auth import AUTHENTICATED, RequestAttributes, UserInfo, forbidden_error
from kfab.objects.errors import bad_request

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
SA_PREFIX = "system:serviceaccount:"
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTH_GROUP = "authentication.k8s.io"  # uids and userextras live there; users, groups, serviceaccounts in core


def _service_account(name: str) -> tuple[str, str] | None:
    """(namespace, name) of `system:serviceaccount:<ns>:<name>`, as serviceaccount.SplitUsername reads it."""
    if not name.startswith(SA_PREFIX):
        return None
    parts = name[len(SA_PREFIX):].split(":")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def _extras(headers) -> dict[str, list[str]]:
    # Header names are case-insensitive, so Kubernetes lower-cases the key and %-decodes it.
    extras: dict[str, list[str]] = {}
    for header, value in headers.items():
        if header.lower().startswith(EXTRA_PREFIX):
            extras.setdefault(unquote(header[len(EXTRA_PREFIX):].lower()), []).append(value)
    return extras


def _check(caller: UserInfo, resource: str, name: str, namespace: str = "", group: str = "",
           subresource: str = "") -> RequestAttributes:
    return RequestAttributes(caller, "impersonate", group, resource, subresource, namespace, name)


async def impersonated_user(authorizer, caller: UserInfo, headers) -> UserInfo:
    """The user a request acts as: `caller`, or whom its Impersonate-* headers name.

    APIError 403 (worded as kube-apiserver) if the caller may not impersonate one of them; 400 for
    groups/uid/extras without a user. Groups, when given, are the authority (a ServiceAccount's groups are
    added only when none are); system:authenticated is added unless system:(un)authenticated was asked for.
    """
    name = headers.get(USER_HEADER, "")
    groups = list(headers.getall(GROUP_HEADER, ()))
    uid = headers.get(UID_HEADER, "")
    extras = _extras(headers)
    if not name:
        if groups or uid or extras:
            raise bad_request(f"requested {GROUP_HEADER}, {UID_HEADER} or Impersonate-Extra-* without "
                              f"impersonating a user ({USER_HEADER})")
        return caller
    sa = _service_account(name)
    checks = [_check(caller, "serviceaccounts", sa[1], sa[0]) if sa else _check(caller, "users", name)]
    checks += [_check(caller, "groups", g) for g in groups]
    checks += [_check(caller, "userextras", v, group=AUTH_GROUP, subresource=key)
               for key, values in extras.items() for v in values]
    if uid:
        checks.append(_check(caller, "uids", uid, group=AUTH_GROUP))
    for attrs in checks:
        allowed, reason = await authorizer.authorize(attrs)
        if not allowed:
            raise forbidden_error(attrs, reason)
    if sa and not groups:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"]
    if name == ANONYMOUS:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, tuple(groups), uid, tuple((k, tuple(v)) for k, v in extras.items()))
