"""User impersonation (`kubectl --as=alice --as-group=dev`), as kube-apiserver's impersonation filter does it.

A caller allowed the `impersonate` verb on users/groups/serviceaccounts/uids (cluster-admin is) may act as
another user: the request is then authenticated as that user and authorized with that user's rights. This
is how an admin checks someone else's access: `kubectl auth can-i list pods --as=alice`.
"""

from __future__ import annotations

from kfab.api.auth import AUTHENTICATED, RequestAttributes, UserInfo, forbidden_error
from kfab.api.errors import bad_request

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
SA_PREFIX = "system:serviceaccount:"


def _target_attrs(caller: UserInfo, resource: str, name: str, namespace: str = "") -> RequestAttributes:
    return RequestAttributes(caller, "impersonate", "", resource, "", namespace, name)


async def impersonated_user(authorizer, caller: UserInfo, headers) -> UserInfo:
    """The user a request acts as: `caller`, or whom its Impersonate-* headers name (APIError 403 if the
    caller may not impersonate them, 400 for groups/uid without a user)."""
    name = headers.get(USER_HEADER, "")
    groups = tuple(headers.getall(GROUP_HEADER, ())) if hasattr(headers, "getall") else \
        tuple(g for g in [headers.get(GROUP_HEADER)] if g)
    uid = headers.get(UID_HEADER, "")
    if not name:
        if groups or uid:
            raise bad_request(f"requested {GROUP_HEADER}/{UID_HEADER} without impersonating a user "
                              f"({USER_HEADER})")
        return caller
    checks = []
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        _, _, ns, sa = name.split(":")
        checks.append(_target_attrs(caller, "serviceaccounts", sa, ns))
    else:
        checks.append(_target_attrs(caller, "users", name))
    checks += [_target_attrs(caller, "groups", g) for g in groups]
    if uid:
        checks.append(_target_attrs(caller, "uids", uid))
    for attrs in checks:
        allowed, reason = await authorizer.authorize(attrs)
        if not allowed:
            raise forbidden_error(attrs, reason)
    extra: tuple[str, ...] = ()
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        # As a ServiceAccount token would carry: its group and its namespace's group.
        extra = ("system:serviceaccounts", f"system:serviceaccounts:{name.split(':')[2]}")
    all_groups = tuple(dict.fromkeys(groups + extra + (AUTHENTICATED,)))
    return UserInfo(name, all_groups, uid)
