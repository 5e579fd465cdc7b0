"""RBAC privilege-escalation prevention, as kube-apiserver's RBAC storage enforces it.

Without it, anyone who may create RoleBindings in a namespace could bind `cluster-admin` there and do
anything in it. Kubernetes lets a user write a Role/ClusterRole only with rules they already hold (or the
`escalate` verb on roles/clusterroles), and a RoleBinding/ClusterRoleBinding only to a role whose rules
they already hold in that scope (or the `bind` verb on that role). system:masters is exempt.

Call `check_rbac_write(authorizer, user, rt, namespace, obj)` before storing a create or update of any of
the four RBAC kinds.
"""

from __future__ import annotations

from kfab.api.auth import RequestAttributes, UserInfo
from kfab.objects.errors import APIError
from kfab.api.rbac import RBAC_GROUP, SYSTEM_MASTERS
from kfab.objects.registry import ResourceType
from kfab.objects.meta import meta_of


def breakdown(rule: dict) -> list[dict]:
    """One rule per (group, resource, verb[, name]) and per (url, verb): what `covers` compares."""
    out = []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                out.extend([{**base, "resourceNames": [n]} for n in names] if names else [base])
    for url in rule.get("nonResourceURLs") or []:
        for verb in verbs:
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _has_all(owner: list, wanted: list) -> bool:
    return all(w in owner for w in wanted)


def _resources_cover(owner: list, wanted: list) -> bool:
    if "*" in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or f"*/{path.split('/', 1)[1]}" not in owner:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith("*") and path.startswith(owner.rstrip("*")))


def rule_covers(owner: dict, sub: dict) -> bool:
    ov, og = owner.get("verbs") or [], owner.get("apiGroups") or []
    on, sn = owner.get("resourceNames") or [], sub.get("resourceNames") or []
    return (("*" in ov or _has_all(ov, sub.get("verbs") or []))
            and ("*" in og or _has_all(og, sub.get("apiGroups") or []))
            and _resources_cover(owner.get("resources") or [], sub.get("resources") or [])
            and all(any(_url_covers(o, p) for o in owner.get("nonResourceURLs") or [])
                    for p in sub.get("nonResourceURLs") or [])
            and (not on or (bool(sn) and _has_all(on, sn))))


def uncovered(owner_rules: list[dict], wanted_rules: list[dict]) -> list[dict]:
    """The atomic rules in `wanted_rules` that no rule of `owner_rules` covers."""
    missing = []
    for rule in wanted_rules:
        for sub in breakdown(rule):
            if not any(rule_covers(o, sub) for o in owner_rules) and sub not in missing:
                missing.append(sub)
    return missing


def _go_quote_list(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def compact_string(rule: dict) -> str:
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
                       ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        if rule.get(key):
            parts.append(f"{label}:{_go_quote_list(rule[key])}")
    return "{" + ", ".join(parts) + "}"


def _forbidden(rt: ResourceType, name: str, message: str) -> APIError:
    return APIError(403, "Forbidden", f'{rt.plural}.{rt.group} "{name}" is forbidden: {message}', name=name,
                    group=rt.group, kind=rt.plural)


async def _allowed(authorizer, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
    allowed, _ = await authorizer.authorize(
        RequestAttributes(user, verb, RBAC_GROUP, resource, "", namespace, name))
    return allowed


async def check_rbac_write(authorizer, user: UserInfo | None, rt: ResourceType, namespace: str | None,
                           obj: dict) -> None:
    """Raise 403 when writing `obj` would grant `user` permissions they do not hold."""
    if rt.group != RBAC_GROUP or user is None or SYSTEM_MASTERS in user.groups:
        return
    ns = namespace or ""
    name = meta_of(obj).get("name", "")
    if rt.kind in ("Role", "ClusterRole"):
        if await _allowed(authorizer, user, "escalate", rt.plural, ns, name):
            return
        wanted = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
    elif rt.kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = ref.get("kind"), ref.get("name", "")
        ref_plural = {"Role": "roles", "ClusterRole": "clusterroles"}.get(ref_kind)
        if ref_plural is None:
            return  # validation rejects an unknown roleRef.kind
        if await _allowed(authorizer, user, "bind", ref_plural, ns, ref_name):
            return
        wanted = authorizer.role_rules(ref_kind, ns, ref_name)
        if wanted is None:
            raise _forbidden(rt, name, f'{ref_plural}.{RBAC_GROUP} "{ref_name}" not found')
    else:
        return
    held, _ = authorizer.rules_for(user, ns)
    missing = uncovered(held, wanted)
    if missing:
        listing = "\n".join(sorted(compact_string(r) for r in missing))
        raise _forbidden(rt, name, f'user "{user.name}" (groups={_go_quote_list(list(user.groups))}) is attempting '
                                   f"to grant RBAC permissions not currently held:\n{listing}")
