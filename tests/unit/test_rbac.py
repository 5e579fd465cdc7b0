"""RBAC: who may do what, decided from Roles and bindings in the store, as Kubernetes decides it."""

from __future__ import annotations

import asyncio
import json

import pytest

from kfab.api.auth import RequestAttributes, UserInfo, request_attributes
from kfab.api.rbac import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    ROLES,
    RBACAuthorizer,
    bootstrap_objects,
    bootstrap_rbac,
)
from kfab.store import open_store

RBAC = "rbac.authorization.k8s.io"


def role(name, rules, namespace=None):
    kind = "Role" if namespace else "ClusterRole"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "rules": rules}


def binding(name, ref_kind, ref_name, subjects, namespace=None):
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref_name},
            "subjects": [dict(zip(("kind", "name", "namespace"), s)) for s in subjects]}


# The policy every case below is judged against.
POLICY = [
    role("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}], "dev"),
    binding("alice-reads-pods", "Role", "pod-reader", [("User", "alice")], "dev"),
    role("deploy-editor", [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                            "verbs": ["*"]}]),
    binding("bob-edits-deploys-in-dev", "ClusterRole", "deploy-editor", [("User", "bob")], "dev"),
    role("one-configmap", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"],
                            "verbs": ["get", "update"]}], "dev"),
    binding("carol-one-cm", "Role", "one-configmap", [("User", "carol")], "dev"),
    role("log-reader", [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
    binding("ops-read-logs", "ClusterRole", "log-reader", [("Group", "ops")]),
    role("scaler", [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update", "patch"]}]),
    binding("scaler-sa", "ClusterRole", "scaler", [("ServiceAccount", "autoscaler", "kube-system")]),
    role("lease-user", [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}], "prod"),
    binding("sa-leases", "Role", "lease-user", [("ServiceAccount", "elector")], "prod"),
    role("metrics", [{"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]),
    binding("monitoring", "ClusterRole", "metrics", [("Group", "monitoring")]),
    binding("dangling", "ClusterRole", "does-not-exist", [("User", "dave")]),
    role("everything", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
]

ALICE = UserInfo("alice", ("system:authenticated",))
BOB = UserInfo("bob", ("system:authenticated",))
CAROL = UserInfo("carol", ("system:authenticated",))
OPS = UserInfo("erin", ("ops", "system:authenticated"))
AUTOSCALER = UserInfo("system:serviceaccount:kube-system:autoscaler", ("system:serviceaccounts",))
ELECTOR = UserInfo("system:serviceaccount:prod:elector", ())
MONITOR = UserInfo("prometheus", ("monitoring",))
ADMIN = UserInfo("kubernetes-admin", ("system:masters",))


def res(user, verb, resource, namespace="", name="", group="", sub=""):
    return RequestAttributes(user, verb, group, resource, sub, namespace, name)


def url(user, verb, path):
    return RequestAttributes(user, verb, path=path, resource_request=False)


CASES = [
    # namespaced Role through a RoleBinding: only its namespace, only its verbs
    ("role allows get in its namespace", res(ALICE, "get", "pods", "dev", "web"), True),
    ("role allows list", res(ALICE, "list", "pods", "dev"), True),
    ("role not in another namespace", res(ALICE, "get", "pods", "prod", "web"), False),
    ("role not cluster-wide", res(ALICE, "list", "pods"), False),
    ("role does not grant delete", res(ALICE, "delete", "pods", "dev", "web"), False),
    ("role does not cover subresources", res(ALICE, "get", "pods", "dev", "web", sub="log"), False),
    ("role is per resource", res(ALICE, "get", "services", "dev"), False),
    ("role is per api group", res(ALICE, "get", "pods", "dev", group="apps"), False),
    # ClusterRole through a RoleBinding: limited to the binding's namespace
    ("clusterrole via rolebinding in ns", res(BOB, "create", "deployments", "dev", group="apps"), True),
    ("verb wildcard", res(BOB, "deletecollection", "deployments", "dev", group="apps"), True),
    ("listed subresource", res(BOB, "update", "deployments", "dev", "web", "apps", "scale"), True),
    ("unlisted subresource", res(BOB, "update", "deployments", "dev", "web", "apps", "status"), False),
    ("clusterrole via rolebinding not elsewhere", res(BOB, "create", "deployments", "prod", group="apps"), False),
    ("clusterrole via rolebinding not cluster-wide", res(BOB, "list", "deployments", group="apps"), False),
    ("wrong group for resource", res(BOB, "create", "deployments", "dev"), False),
    # resourceNames
    ("named resource", res(CAROL, "get", "configmaps", "dev", "app-config"), True),
    ("other name", res(CAROL, "get", "configmaps", "dev", "other"), False),
    ("list has no name", res(CAROL, "list", "configmaps", "dev"), False),
    # groups and subresource rules
    ("group member reads logs anywhere", res(OPS, "get", "pods", "prod", "web", sub="log"), True),
    ("pods/log does not grant pods", res(OPS, "get", "pods", "prod", "web"), False),
    ("non-member", res(ALICE, "get", "pods", "prod", "web", sub="log"), False),
    # */scale wildcard, ServiceAccount subjects
    ("*/scale for any group", res(AUTOSCALER, "patch", "statefulsets", "prod", "db", "apps", "scale"), True),
    ("*/scale not the resource", res(AUTOSCALER, "patch", "statefulsets", "prod", "db", "apps"), False),
    ("sa of another namespace", res(UserInfo("system:serviceaccount:default:autoscaler"), "patch",
                                    "deployments", "prod", "x", "apps", "scale"), False),
    ("sa subject defaults to binding namespace",
     res(ELECTOR, "update", "leases", "prod", "l", "coordination.k8s.io"), True),
    ("sa binding only in its namespace", res(ELECTOR, "update", "leases", "dev", "l", "coordination.k8s.io"), False),
    # non-resource URLs
    ("exact url", url(MONITOR, "get", "/metrics"), True),
    ("url prefix wildcard", url(MONITOR, "get", "/logs/kfab/api.log"), True),
    ("url wildcard needs the prefix", url(MONITOR, "get", "/logsx"), False),
    ("url verb", url(MONITOR, "post", "/metrics"), False),
    ("resource rules do not grant urls", url(BOB, "get", "/metrics"), False),
    # a binding to a missing role grants nothing; an unbound role grants nothing
    ("dangling binding", res(UserInfo("dave"), "get", "pods", "dev"), False),
    ("unbound clusterrole", res(UserInfo("nobody"), "get", "pods", "dev"), False),
    # system:masters is allowed everything, as kube-apiserver's privileged group
    ("system:masters", res(ADMIN, "delete", "nodes", name="n1"), True),
]


async def _store_with(tmp_path, objects):
    store = await open_store(f"sqlite:///{tmp_path}/state.db")
    for obj in objects:
        rt = {("Role"): ROLES, "RoleBinding": ROLE_BINDINGS, "ClusterRole": CLUSTER_ROLES,
              "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS}[obj["kind"]]
        meta = obj["metadata"]
        await store.create(rt.store_key(meta.get("namespace"), meta["name"]), json.dumps(obj).encode())
    return store


@pytest.fixture(scope="module")
def decisions(tmp_path_factory):
    """Every case's decision, from one authorizer over one store."""
    async def run():
        store = await _store_with(tmp_path_factory.mktemp("rbac"), POLICY)
        authz = RBACAuthorizer(store)
        await authz.start()
        try:
            return {name: await authz.authorize(attrs) for name, attrs, _ in CASES}
        finally:
            await authz.stop()
            await store.close()
    return asyncio.run(run())


@pytest.mark.parametrize("name,attrs,expected", CASES, ids=[c[0] for c in CASES])
def test_rbac_decision(decisions, name, attrs, expected):
    allowed, _ = decisions[name]
    assert allowed is expected


def test_reasons_name_the_binding_as_kubernetes_does(decisions):
    assert decisions["role allows get in its namespace"][1] == \
        'RBAC: allowed by RoleBinding "alice-reads-pods/dev" of Role "pod-reader" to User "alice"'
    assert decisions["group member reads logs anywhere"][1] == \
        'RBAC: allowed by ClusterRoleBinding "ops-read-logs" of ClusterRole "log-reader" to Group "ops"'
    assert decisions["sa subject defaults to binding namespace"][1].endswith('to ServiceAccount "elector/prod"')
    assert decisions["dangling binding"] == \
        (False, 'RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found')
    assert decisions["unbound clusterrole"] == (False, "")


def test_cache_follows_binding_changes(tmp_path):
    async def run():
        store = await _store_with(tmp_path, POLICY)
        authz = RBACAuthorizer(store)
        await authz.start()
        frank_lists = res(UserInfo("frank"), "list", "secrets", "dev")
        try:
            assert (await authz.authorize(frank_lists))[0] is False
            rb = binding("frank-all", "ClusterRole", "everything", [("User", "frank")], "dev")
            kv = await store.create(ROLE_BINDINGS.store_key("dev", "frank-all"), json.dumps(rb).encode())
            await authz.wait_for_revision(kv.mod_revision)
            assert (await authz.authorize(frank_lists))[0] is True

            # Narrowing the role takes effect too.
            narrowed = role("everything", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
            kv = await store.update(CLUSTER_ROLES.store_key(None, "everything"), json.dumps(narrowed).encode())
            await authz.wait_for_revision(kv.mod_revision)
            assert (await authz.authorize(frank_lists))[0] is False
            assert (await authz.authorize(res(UserInfo("frank"), "list", "pods", "dev")))[0] is True

            kv = await store.delete(ROLE_BINDINGS.store_key("dev", "frank-all"))
            await authz.wait_for_revision(kv.mod_revision)
            assert (await authz.authorize(res(UserInfo("frank"), "list", "pods", "dev")))[0] is False
        finally:
            await authz.stop()
            await store.close()
    asyncio.run(run())


def test_bootstrap_policy_grants_admin_and_basics(tmp_path):
    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        try:
            created = await bootstrap_rbac(store)
            assert len(created) == len(bootstrap_objects())
            assert await bootstrap_rbac(store) == []  # idempotent
            authz = RBACAuthorizer(store)
            await authz.start()
            try:
                alice = UserInfo("alice", ("system:authenticated",))
                admin_by_binding = UserInfo("root", ("system:masters",))
                checks = {
                    "discovery": url(alice, "get", "/apis/apps/v1"),
                    "version": url(alice, "get", "/version"),
                    "can-i": res(alice, "create", "selfsubjectaccessreviews", group="authorization.k8s.io"),
                    "pods": res(alice, "list", "pods", "default"),
                    "admin": res(admin_by_binding, "delete", "nodes", name="n1"),
                }
                got = {k: (await authz.authorize(a))[0] for k, a in checks.items()}
                assert got == {"discovery": True, "version": True, "can-i": True, "pods": False, "admin": True}
                # The cluster-admin binding itself (not only the privileged-group shortcut) grants everything.
                crb = json.loads((await store.get(CLUSTER_ROLE_BINDINGS.store_key(None, "cluster-admin"))).value)
                assert crb["subjects"][0]["name"] == "system:masters"
                assert crb["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"}
                assert "resourceVersion" not in crb["metadata"] and crb["metadata"]["uid"]
            finally:
                await authz.stop()
        finally:
            await store.close()
    asyncio.run(run())


def test_bootstrap_keeps_a_role_the_user_changed(tmp_path):
    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        try:
            custom = role("view", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
            await store.create(CLUSTER_ROLES.store_key(None, "view"), json.dumps(custom).encode())
            await bootstrap_rbac(store)
            stored = json.loads((await store.get(CLUSTER_ROLES.store_key(None, "view"))).value)
            assert stored["rules"] == custom["rules"]
        finally:
            await store.close()
    asyncio.run(run())


@pytest.mark.parametrize("method,path,query,expected", [
    ("GET", "/api/v1/namespaces/dev/pods", "", ("list", "", "pods", "", "dev", "")),
    ("GET", "/api/v1/namespaces/dev/pods", "watch=true", ("watch", "", "pods", "", "dev", "")),
    ("GET", "/api/v1/namespaces/dev/pods", "watch=1&fieldSelector=metadata.name%3Dweb",
     ("watch", "", "pods", "", "dev", "web")),
    ("GET", "/api/v1/namespaces/dev/pods/web/log", "", ("get", "", "pods", "log", "dev", "web")),
    ("POST", "/api/v1/namespaces/dev/pods/web/binding", "", ("create", "", "pods", "binding", "dev", "web")),
    ("DELETE", "/apis/apps/v1/namespaces/dev/deployments", "",
     ("deletecollection", "apps", "deployments", "", "dev", "")),
    ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web/scale", "",
     ("patch", "apps", "deployments", "scale", "dev", "web")),
    ("GET", "/api/v1/nodes", "", ("list", "", "nodes", "", "", "")),
    ("PUT", "/api/v1/nodes/n1/status", "", ("update", "", "nodes", "status", "", "n1")),
    ("GET", "/api/v1/namespaces/dev", "", ("get", "", "namespaces", "", "dev", "dev")),
    ("PUT", "/api/v1/namespaces/dev/finalize", "", ("update", "", "namespaces", "finalize", "dev", "dev")),
    ("GET", "/api/v1/pods", "", ("list", "", "pods", "", "", "")),
    ("GET", "/api/v1/watch/namespaces/dev/pods", "", ("watch", "", "pods", "", "dev", "")),
])
def test_request_attributes_from_urls(method, path, query, expected):
    a = request_attributes(ALICE, method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == expected


@pytest.mark.parametrize("path", ["/version", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1",
                                  "/openapi/v2", "/healthz"])
def test_discovery_and_other_paths_are_non_resource_requests(path):
    a = request_attributes(ALICE, "GET", path, "")
    assert not a.resource_request and a.verb == "get" and a.path == path


class _WatchFailsOnce:
    """The real SQLite store, except that its first watch breaks (as an etcd watch does when a member dies)."""

    def __init__(self, store):
        self._store = store
        self.watches = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def watch(self, prefix, after_revision):
        self.watches += 1
        if self.watches == 1:
            return self._broken()
        return self._store.watch(prefix, after_revision)

    async def _broken(self):
        from kfab.store import StoreUnavailable
        raise StoreUnavailable("connection to the store lost")
        yield  # an async generator


def test_cache_resyncs_after_the_watch_breaks(tmp_path):
    async def run():
        store = await _store_with(tmp_path, POLICY)
        flaky = _WatchFailsOnce(store)
        authz = RBACAuthorizer(flaky)
        await authz.start()
        try:
            rb = binding("gina-all", "ClusterRole", "everything", [("User", "gina")], "dev")
            kv = await store.create(ROLE_BINDINGS.store_key("dev", "gina-all"), json.dumps(rb).encode())
            await authz.wait_for_revision(kv.mod_revision)
            assert (await authz.authorize(res(UserInfo("gina"), "get", "pods", "dev")))[0] is True
            assert flaky.watches >= 2
        finally:
            await authz.stop()
            await store.close()
    asyncio.run(run())


def test_an_older_clusters_default_roles_get_what_a_newer_kfab_adds(tmp_path):
    """After an upgrade the API server reconciles the bootstrap roles as kube-apiserver does: missing rules are
    added (nodes may now request ServiceAccount tokens), a user's additions stay, autoupdate "false" is left."""
    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        try:
            await bootstrap_rbac(store)
            node_key = CLUSTER_ROLES.store_key(None, "system:node")
            view_key = CLUSTER_ROLES.store_key(None, "view")
            token_rule = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
            user_rule = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
            for key, edit in ((node_key, lambda r: [x for x in r if x != token_rule] + [user_rule]),
                              (view_key, lambda r: [])):
                obj = json.loads((await store.get(key)).value)
                obj["rules"] = edit(obj["rules"])
                if key == view_key:
                    obj["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
                await store.update(key, json.dumps(obj).encode())
            changed = await bootstrap_rbac(store)
            node = json.loads((await store.get(node_key)).value)
            view = json.loads((await store.get(view_key)).value)
            return changed, node["rules"], view["rules"]
        finally:
            await store.close()

    changed, node_rules, view_rules = asyncio.run(run())
    assert changed == [CLUSTER_ROLES.store_key(None, "system:node")]
    assert {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]} in node_rules
    assert {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]} in node_rules
    assert view_rules == []
