"""RBAC authorization, evaluated as Kubernetes' RBAC authorizer does (k8s.io/kubernetes
plugin/pkg/auth/authorizer/rbac).

A request is allowed when any rule of any role bound to the user allows it: ClusterRoleBindings first
(their ClusterRole applies cluster-wide), then the RoleBindings of the request's namespace (their Role, or
a ClusterRole limited to that namespace). No deny rules. `aggregationRule` on ClusterRoles is not
evaluated (its rules field is used as written).

The authorizer answers from an in-memory copy of the four RBAC kinds, kept current by a store watch, so
authorizing a request does no store reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kfab.api import rbac_policy
from kfab.api.auth import RequestAttributes, UserInfo
from kfab.objects.registry import REGISTRY
from kfab.store.base import KeyExists, KeyNotFound, RevisionConflict, Store

log = logging.getLogger("kfab.rbac")

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = REGISTRY.by_path(RBAC_GROUP, "v1", "roles")
ROLE_BINDINGS = REGISTRY.by_path(RBAC_GROUP, "v1", "rolebindings")
CLUSTER_ROLES = REGISTRY.by_path(RBAC_GROUP, "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = REGISTRY.by_path(RBAC_GROUP, "v1", "clusterrolebindings")
# All four kinds live under this one prefix: one list and one watch keep the cache.
RBAC_PREFIX = f"/registry/{RBAC_GROUP}/"
# kube-apiserver's privileged group: allowed everything before RBAC is consulted.
SYSTEM_MASTERS = "system:masters"
RESYNC_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


# --- rule and subject matching (rbac/v1 helpers in Kubernetes) -----------------------------------------

def verb_matches(rule: dict, verb: str) -> bool:
    verbs = rule.get("verbs") or []
    return "*" in verbs or verb in verbs


def api_group_matches(rule: dict, group: str) -> bool:
    groups = rule.get("apiGroups") or []
    return "*" in groups or group in groups


def resource_matches(rule: dict, resource: str, subresource: str) -> bool:
    """`pods` matches only pods; `pods/log` only the log subresource; `*/scale` any resource's scale."""
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: dict, name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def non_resource_url_matches(rule: dict, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: dict, attrs: RequestAttributes) -> bool:
    if attrs.resource_request:
        return (verb_matches(rule, attrs.verb) and api_group_matches(rule, attrs.api_group)
                and resource_matches(rule, attrs.resource, attrs.subresource)
                and resource_name_matches(rule, attrs.name))
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def subject_applies(subject: dict, user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace means the binding's own namespace.
        ns = subject.get("namespace") or binding_namespace
        return bool(ns) and user.name == service_account_username(ns, name)
    return False


def describe_subject(subject: dict, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


# --- the cache -------------------------------------------------------------------------------------------

@dataclass
class _Policy:
    cluster_roles: dict[str, list[dict]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[dict]] = field(default_factory=dict)  # (ns, name)
    cluster_role_bindings: dict[str, dict] = field(default_factory=dict)
    role_bindings: dict[str, dict[str, dict]] = field(default_factory=dict)  # ns -> name -> binding

    def put(self, key: str, obj: dict) -> None:
        self._set(key, obj)

    def remove(self, key: str) -> None:
        self._set(key, None)

    def _set(self, key: str, obj: dict | None) -> None:
        parts = key[len(RBAC_PREFIX):].split("/")
        plural = parts[0]
        if plural == "clusterroles" and len(parts) == 2:
            _assign(self.cluster_roles, parts[1], _rules(obj))
        elif plural == "clusterrolebindings" and len(parts) == 2:
            _assign(self.cluster_role_bindings, parts[1], obj)
        elif plural == "roles" and len(parts) == 3:
            _assign(self.roles, (parts[1], parts[2]), _rules(obj))
        elif plural == "rolebindings" and len(parts) == 3:
            in_ns = self.role_bindings.setdefault(parts[1], {})
            _assign(in_ns, parts[2], obj)
            if not in_ns:
                del self.role_bindings[parts[1]]


def _rules(obj: dict | None) -> list[dict] | None:
    return None if obj is None else [r for r in obj.get("rules") or [] if isinstance(r, dict)]


def _assign(d: dict, k, v) -> None:
    if v is None:
        d.pop(k, None)
    else:
        d[k] = v


def _decode(key: str, value: bytes) -> dict | None:
    try:
        obj = json.loads(value)
        return obj if isinstance(obj, dict) else None
    except ValueError:
        log.warning("RBAC cache: %s is not JSON; ignoring it", key)
        return None


class RBACAuthorizer:
    def __init__(self, store: Store):
        self._store = store
        self._policy = _Policy()
        self._revision = 0
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Load the current policy, then keep it current in the background."""
        await self._relist()
        self._task = asyncio.create_task(self._follow(), name="rbac-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def revision(self) -> int:
        """The store revision the cache reflects (tests wait on it instead of sleeping)."""
        return self._revision

    async def wait_for_revision(self, revision: int, timeout: float = 10.0) -> None:
        async def reached():
            while self._revision < revision:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(reached(), timeout)

    async def _relist(self) -> None:
        kvs, revision = await self._store.list(RBAC_PREFIX)
        policy = _Policy()
        for kv in kvs:
            obj = _decode(kv.key, kv.value)
            if obj is not None:
                policy.put(kv.key, obj)
        self._policy, self._revision = policy, revision
        self._synced.set()

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                if failures:
                    await self._relist()
                # aclosing: a cancelled or failed watch is released now, not when the GC gets to it.
                async with contextlib.aclosing(self._store.watch(RBAC_PREFIX, self._revision)) as events:
                    async for event in events:
                        failures = 0
                        obj = _decode(event.kv.key, event.kv.value) if event.type == "PUT" else None
                        if event.type == "PUT" and obj is not None:
                            self._policy.put(event.kv.key, obj)
                        else:
                            self._policy.remove(event.kv.key)
                        self._revision = event.kv.mod_revision
                failures = 1  # the watch ended: list again and resume
            except asyncio.CancelledError:
                raise
            except Exception as e:  # compacted, store down, ...: keep serving the last policy, then resync
                delay = RESYNC_BACKOFF[min(failures, len(RESYNC_BACKOFF) - 1)]
                failures += 1
                log.warning("RBAC cache: watch failed (%s: %s); resyncing in %.1fs", type(e).__name__, e, delay)
                await asyncio.sleep(delay)

    async def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]:
        return self.check(attrs)

    def check(self, attrs: RequestAttributes) -> tuple[bool, str]:
        """(allowed, reason). Reasons are worded as Kubernetes' RBAC authorizer words them."""
        if SYSTEM_MASTERS in attrs.user.groups:
            return True, ""
        if not self._synced.is_set():
            return False, "RBAC: the authorization cache has not loaded yet"
        p = self._policy
        errors: list[str] = []
        for name, binding in p.cluster_role_bindings.items():
            ref = binding.get("roleRef") or {}
            for subject in binding.get("subjects") or []:
                if not subject_applies(subject, attrs.user, ""):
                    continue
                rules = p.cluster_roles.get(ref.get("name", "")) if ref.get("kind") == "ClusterRole" else None
                if rules is None:
                    errors.append(f'clusterrole.rbac.authorization.k8s.io "{ref.get("name", "")}" not found')
                    break
                if any(rule_allows(r, attrs) for r in rules):
                    return True, (f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{ref.get("name")}" '
                                  f"to {describe_subject(subject, '')}")
                break
        if attrs.namespace:
            ns = attrs.namespace
            for name, binding in p.role_bindings.get(ns, {}).items():
                ref = binding.get("roleRef") or {}
                for subject in binding.get("subjects") or []:
                    if not subject_applies(subject, attrs.user, ns):
                        continue
                    kind, role = ref.get("kind"), ref.get("name", "")
                    rules = (p.roles.get((ns, role)) if kind == "Role"
                             else p.cluster_roles.get(role) if kind == "ClusterRole" else None)
                    if rules is None:
                        errors.append(f'{str(kind).lower()}.rbac.authorization.k8s.io "{role}" not found')
                        break
                    if any(rule_allows(r, attrs) for r in rules):
                        return True, (f'RBAC: allowed by RoleBinding "{name}/{ns}" of {kind} "{role}" '
                                      f"to {describe_subject(subject, ns)}")
                    break
        return False, ("RBAC: " + ", ".join(errors)) if errors else ""

    def role_rules(self, kind: str, namespace: str, name: str) -> list[dict] | None:
        """The rules of the Role (in namespace) or ClusterRole a roleRef names; None when it does not exist."""
        if kind == "ClusterRole":
            return self._policy.cluster_roles.get(name)
        if kind == "Role":
            return self._policy.roles.get((namespace, name))
        return None

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict], bool]:
        """Every rule that applies to `user` in `namespace` (cluster-wide ones included), and whether the
        list is incomplete (a binding names a missing role). What SelfSubjectRulesReview reports."""
        if SYSTEM_MASTERS in user.groups:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                    {"verbs": ["*"], "nonResourceURLs": ["*"]}], False
        p = self._policy
        rules: list[dict] = []
        incomplete = False
        for binding in p.cluster_role_bindings.values():
            if any(subject_applies(s, user, "") for s in binding.get("subjects") or []):
                ref = binding.get("roleRef") or {}
                found = p.cluster_roles.get(ref.get("name", "")) if ref.get("kind") == "ClusterRole" else None
                incomplete |= found is None
                rules.extend(found or [])
        for binding in p.role_bindings.get(namespace, {}).values() if namespace else ():
            if any(subject_applies(s, user, namespace) for s in binding.get("subjects") or []):
                ref = binding.get("roleRef") or {}
                found = (p.roles.get((namespace, ref.get("name", ""))) if ref.get("kind") == "Role"
                         else p.cluster_roles.get(ref.get("name", "")) if ref.get("kind") == "ClusterRole" else None)
                incomplete |= found is None
                rules.extend(found or [])
        return rules, incomplete


# --- bootstrap policy ------------------------------------------------------------------------------------

def _metadata(name: str) -> dict:
    return {
        "name": name,
        "uid": str(uuid.uuid4()),
        "creationTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def bootstrap_objects() -> list[tuple[str, dict]]:
    """(store key, object) for the default ClusterRoles and ClusterRoleBindings."""
    out: list[tuple[str, dict]] = []
    for name, rules in rbac_policy.CLUSTER_ROLES.items():
        out.append((CLUSTER_ROLES.store_key(None, name), {
            "kind": "ClusterRole", "apiVersion": f"{RBAC_GROUP}/v1", "metadata": _metadata(name), "rules": rules}))
    for name, (role, subjects) in rbac_policy.CLUSTER_ROLE_BINDINGS.items():
        out.append((CLUSTER_ROLE_BINDINGS.store_key(None, name), {
            "kind": "ClusterRoleBinding", "apiVersion": f"{RBAC_GROUP}/v1", "metadata": _metadata(name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": k, "name": n} for k, n in subjects]}))
    return out


AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


async def bootstrap_rbac(store: Store) -> list[str]:
    """Create the default roles and bindings that are missing, and give those it made (annotated autoupdate
    "true") what a newer kfab adds (rules, subjects): kube-apiserver's RBAC reconciliation, which adds and
    never removes, so users' own additions stay. Safe to run concurrently from two API servers: a
    create or update that loses the race is skipped. Returns the keys created or updated."""
    changed = []
    for key, obj in bootstrap_objects():
        kv = await store.get(key)
        if kv is None:
            try:
                await store.create(key, json.dumps(obj, separators=(",", ":")).encode())
                changed.append(key)
            except KeyExists:
                pass
            continue
        current = json.loads(kv.value)
        # Only what bootstrap made (autoupdate "true"); a user's own object or one set to "false" is theirs.
        if ((current.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) != "true":
            continue
        field = "rules" if obj["kind"] == "ClusterRole" else "subjects"
        have = list(current.get(field) or [])
        missing = [item for item in obj[field] if item not in have]
        if not missing:
            continue
        current[field] = have + missing
        try:
            await store.update(key, json.dumps(current, separators=(",", ":")).encode(), kv.mod_revision)
            changed.append(key)
        except (KeyNotFound, RevisionConflict):
            pass  # another API server reconciled it (or it was deleted) meanwhile
    return changed
