"""RBAC escalation prevention: nobody grants, through a Role or a binding, more than they hold."""

from __future__ import annotations

import asyncio
import json

import pytest

from kfab.api.auth import UserInfo
from kfab.objects.errors import APIError
from kfab.api.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, RBACAuthorizer, bootstrap_rbac
from kfab.api.rbac_escalation import check_rbac_write, rule_covers
from kfab.store import open_store

RBAC = "rbac.authorization.k8s.io"
# The namespace admin: `admin` in dev (may create Roles and RoleBindings there).
ANNA = UserInfo("anna", ("system:authenticated",))
ROOT = UserInfo("root", ("system:masters",))


def _rb(name, ns, ref_kind, ref_name, user):
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref_name},
            "subjects": [{"kind": "User", "name": user}]}


def _role(name, ns, rules):
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules}


async def _outcomes(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path}/state.db")
    await bootstrap_rbac(store)
    await store.create(ROLE_BINDINGS.store_key("dev", "anna-admin"),
                       json.dumps(_rb("anna-admin", "dev", "ClusterRole", "admin", "anna")).encode())
    binder = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "bind-view"},
              "rules": [{"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"],
                         "resourceNames": ["cluster-admin"]}]}
    await store.create(CLUSTER_ROLES.store_key(None, "bind-view"), json.dumps(binder).encode())
    await store.create(ROLE_BINDINGS.store_key("ops", "anna-binds"),
                       json.dumps(_rb("anna-binds", "ops", "ClusterRole", "bind-view", "anna")).encode())
    authz = RBACAuthorizer(store)
    await authz.start()

    async def outcome(user, rt, ns, obj):
        try:
            await check_rbac_write(authz, user, rt, ns, obj)
            return "allowed"
        except APIError as e:
            return e

    try:
        return {
            "bind view in own namespace": await outcome(ANNA, ROLE_BINDINGS, "dev",
                                                        _rb("b", "dev", "ClusterRole", "view", "bob")),
            "bind edit in own namespace": await outcome(ANNA, ROLE_BINDINGS, "dev",
                                                        _rb("b", "dev", "ClusterRole", "edit", "bob")),
            "bind cluster-admin in own namespace": await outcome(
                ANNA, ROLE_BINDINGS, "dev", _rb("b", "dev", "ClusterRole", "cluster-admin", "anna")),
            "role within her rights": await outcome(ANNA, ROLES, "dev", _role("r", "dev", [
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}])),
            "role with nodes": await outcome(ANNA, ROLES, "dev", _role("r", "dev", [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}])),
            "role with wildcard": await outcome(ANNA, ROLES, "dev", _role("r", "dev", [
                {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}])),
            "bind verb on the role": await outcome(ANNA, ROLE_BINDINGS, "ops",
                                                   _rb("b", "ops", "ClusterRole", "cluster-admin", "anna")),
            "missing role": await outcome(ANNA, ROLE_BINDINGS, "dev", _rb("b", "dev", "Role", "nope", "bob")),
            "system:masters": await outcome(ROOT, CLUSTER_ROLE_BINDINGS, None, {
                "metadata": {"name": "x"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "anna"}]}),
        }
    finally:
        await authz.stop()
        await store.close()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return asyncio.run(_outcomes(tmp_path_factory.mktemp("escalation")))


@pytest.mark.parametrize("case,allowed", [
    ("bind view in own namespace", True),
    ("bind edit in own namespace", True),
    ("bind cluster-admin in own namespace", False),
    ("role within her rights", True),
    ("role with nodes", False),
    ("role with wildcard", False),
    ("bind verb on the role", True),
    ("missing role", False),
    ("system:masters", True),
])
def test_escalation_check(outcomes, case, allowed):
    assert (outcomes[case] == "allowed") is allowed, outcomes[case]


def test_escalation_message_lists_what_is_not_held(outcomes):
    e = outcomes["role with nodes"]
    assert e.code == 403 and e.reason == "Forbidden"
    assert e.message == ('roles.rbac.authorization.k8s.io "r" is forbidden: user "anna" '
                         '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently '
                         'held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')


@pytest.mark.parametrize("owner,sub,covers", [
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
     {"apiGroups": ["x"], "resources": ["y"], "verbs": ["z"]}, True),
    ({"apiGroups": [""], "resources": ["*/scale"], "verbs": ["get"]},
     {"apiGroups": [""], "resources": ["rc/scale"], "verbs": ["get"]}, True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
     {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}, False),
    ({"apiGroups": [""], "resources": ["cm"], "verbs": ["get"], "resourceNames": ["a"]},
     {"apiGroups": [""], "resources": ["cm"], "verbs": ["get"]}, False),
    ({"apiGroups": [""], "resources": ["cm"], "verbs": ["get"]},
     {"apiGroups": [""], "resources": ["cm"], "verbs": ["get"], "resourceNames": ["a"]}, True),
    ({"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}, {"nonResourceURLs": ["/logs/x"], "verbs": ["get"]}, True),
    ({"nonResourceURLs": ["/logs"], "verbs": ["get"]}, {"nonResourceURLs": ["/logs/x"], "verbs": ["get"]}, False),
])
def test_rule_covers(owner, sub, covers):
    assert rule_covers(owner, sub) is covers
