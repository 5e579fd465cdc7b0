"""Authentication (tokens, client certificates), 403 wording, and SelfSubjectAccessReview."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest
from aiohttp import web

from kfab.api.access_review import self_subject_access_review, self_subject_rules_review
from kfab.api.auth import (
    Authenticator,
    RequestAttributes,
    TokenFileError,
    UserInfo,
    forbidden_error,
    load_token_file,
)
from kfab.objects.errors import APIError
from kfab.api.rbac import ROLE_BINDINGS, RBACAuthorizer, bootstrap_rbac
from kfab.pki import client_ssl_context, ensure_control_plane_pki, issue_client_cert, server_ssl_context
from kfab.store import open_store

TOKENS = '''s3cret-admin,admin,uid-1,"system:masters"
alice-token,alice,uid-2,"dev,ops"
bob-token,bob,uid-3

'''


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "tokens.csv"
    p.write_text(TOKENS)
    return p


def test_token_file_gives_users_and_groups(token_file):
    auth = Authenticator(token_file)
    assert auth.user_for_token("alice-token") == UserInfo("alice", ("dev", "ops"), "uid-2")
    assert auth.user_for_token("bob-token") == UserInfo("bob", (), "uid-3")
    assert auth.user_for_token("alice-tokenx") is None
    assert auth.user_for_token("") is None


@pytest.mark.parametrize("content,line,words", [
    ("good,u,1\nonly-two,columns\n", 2, "at least 3 columns"),
    ("good,u,1\n\n,u2,2\n", 3, "token (column 1) is empty"),
    ("t1,,1\n", 1, "user name (column 2) is empty"),
    ("t1,u1,1\nt1,u2,2\n", 2, "duplicate token"),
    ('t1,u1,1,"unterminated\n', 1, ""),
])
def test_malformed_token_file_names_file_and_line(tmp_path, content, line, words):
    p = tmp_path / "tokens.csv"
    p.write_text(content)
    with pytest.raises(TokenFileError) as e:
        load_token_file(p)
    assert str(p) in str(e.value) and f"line {line}" in str(e.value) and words in str(e.value)


def test_token_file_error_never_shows_a_token(tmp_path):
    p = tmp_path / "tokens.csv"
    p.write_text("very-secret-token,u1,1\nvery-secret-token,u2,2\n")
    with pytest.raises(TokenFileError) as e:
        load_token_file(p)
    assert "very-secret-token" not in str(e.value)


def test_missing_token_file_is_named(tmp_path):
    with pytest.raises(TokenFileError, match="nope.csv"):
        Authenticator(tmp_path / "nope.csv")


@pytest.fixture
def tls_server(tmp_path, token_file):
    """A real TLS server on loopback that answers with who the Authenticator says the caller is."""
    pki = ensure_control_plane_pki(tmp_path, [], [])
    auth = Authenticator(token_file, pki.ca_cert_path)

    async def whoami(request):
        user = auth.authenticate(request)
        if user is None:
            return web.json_response({"user": None}, status=401)
        return web.json_response({"user": user.name, "groups": list(user.groups)})

    async def serve(calls, extra_trusted_ca=None):
        ctx = server_ssl_context(pki)
        if extra_trusted_ca is not None:  # a TLS context trusting more than the cluster CA (misconfiguration)
            ctx.load_verify_locations(cafile=str(extra_trusted_ca))
        app = web.Application()
        app.router.add_get("/whoami", whoami)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await calls(f"https://127.0.0.1:{port}/whoami")
        finally:
            await runner.cleanup()

    return pki, serve


async def _get(url, ctx: ssl.SSLContext, headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.get(url, ssl=ctx, headers=headers or {}) as r:
            return r.status, await r.json()


def test_client_certificate_and_tokens_identify_the_caller(tls_server, tmp_path):
    pki, serve = tls_server
    alice_cert, alice_key = issue_client_cert(pki, "alice", ["dev"])
    (tmp_path / "alice.crt").write_bytes(alice_cert)
    (tmp_path / "alice.key").write_bytes(alice_key)

    async def calls(url):
        plain = client_ssl_context(pki)
        return {
            "nothing": await _get(url, plain),
            "admin cert": await _get(url, client_ssl_context(pki, pki.admin_cert_path, pki.admin_key_path)),
            "alice cert": await _get(url, client_ssl_context(pki, tmp_path / "alice.crt", tmp_path / "alice.key")),
            "token": await _get(url, plain, {"Authorization": "Bearer bob-token"}),
            "lowercase scheme": await _get(url, plain, {"Authorization": "bearer bob-token"}),
            "bad token": await _get(url, plain, {"Authorization": "Bearer nope"}),
            "basic auth": await _get(url, plain, {"Authorization": "Basic Ym9iOnB3"}),
        }

    got = asyncio.run(serve(calls))
    assert got["nothing"] == (401, {"user": None})
    assert got["admin cert"] == (200, {"user": "kubernetes-admin",
                                       "groups": ["system:masters", "system:authenticated"]})
    assert got["alice cert"] == (200, {"user": "alice", "groups": ["dev", "system:authenticated"]})
    assert got["token"] == (200, {"user": "bob", "groups": ["system:authenticated"]})
    assert got["lowercase scheme"] == got["token"]
    assert got["bad token"] == (401, {"user": None})
    assert got["basic auth"] == (401, {"user": None})


def test_certificate_from_another_ca_is_not_a_user_even_if_tls_let_it_in(tls_server, tmp_path):
    pki, serve = tls_server
    other = ensure_control_plane_pki(tmp_path / "other", [], [])

    async def calls(url):
        return await _get(url, client_ssl_context(pki, other.admin_cert_path, other.admin_key_path))

    assert asyncio.run(serve(calls, extra_trusted_ca=other.ca_cert_path)) == (401, {"user": None})


def test_forbidden_message_matches_kube_apiserver():
    alice = UserInfo("alice")
    e = forbidden_error(RequestAttributes(alice, "list", "", "pods", namespace="default"))
    assert e.code == 403 and e.reason == "Forbidden"
    assert e.message == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                         'in the namespace "default"')
    e = forbidden_error(RequestAttributes(alice, "get", "apps", "deployments", "scale", "dev", "web"))
    assert e.message == ('deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" '
                         'in API group "apps" in the namespace "dev"')
    assert e.status()["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    e = forbidden_error(RequestAttributes(alice, "list", "", "nodes"))
    assert e.message.endswith('cannot list resource "nodes" in API group "" at the cluster scope')
    e = forbidden_error(RequestAttributes(alice, "get", path="/metrics", resource_request=False))
    assert e.message == 'forbidden: User "alice" cannot get path "/metrics"'


def _review(**spec):
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"allowed": False}}


def test_self_subject_access_review_answers_for_the_caller(tmp_path):
    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        await bootstrap_rbac(store)
        rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "alice-edit", "namespace": "dev"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
              "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}
        await store.create(ROLE_BINDINGS.store_key("dev", "alice-edit"), json.dumps(rb).encode())
        authz = RBACAuthorizer(store)
        await authz.start()
        alice = UserInfo("alice", ("system:authenticated",))
        try:
            yes = await self_subject_access_review(authz, alice, _review(
                resourceAttributes={"namespace": "dev", "verb": "create", "group": "apps", "resource": "deployments"}))
            no = await self_subject_access_review(authz, alice, _review(
                resourceAttributes={"namespace": "prod", "verb": "create", "resource": "pods"}))
            url = await self_subject_access_review(authz, alice, _review(
                nonResourceAttributes={"path": "/version", "verb": "get"}))
            with pytest.raises(APIError) as both:
                await self_subject_access_review(authz, alice, _review(
                    resourceAttributes={"verb": "get", "resource": "pods"},
                    nonResourceAttributes={"path": "/version", "verb": "get"}))
            with pytest.raises(APIError) as neither:
                await self_subject_access_review(authz, alice, _review())
            return yes, no, url, both.value, neither.value
        finally:
            await authz.stop()
            await store.close()

    yes, no, url, both, neither = asyncio.run(run())
    assert yes["kind"] == "SelfSubjectAccessReview" and yes["apiVersion"] == "authorization.k8s.io/v1"
    assert yes["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "alice-edit/dev" of '
                                                        'ClusterRole "edit" to User "alice"'}
    assert yes["spec"]["resourceAttributes"]["resource"] == "deployments"
    assert no["status"] == {"allowed": False}
    assert url["status"]["allowed"] is True
    assert both.code == 422 and "exactly one of" in both.message
    assert neither.code == 422


def test_self_subject_rules_review_lists_the_callers_rules_in_a_namespace(tmp_path):
    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        await bootstrap_rbac(store)
        rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "alice-view", "namespace": "dev"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
              "subjects": [{"kind": "User", "name": "alice"}]}
        await store.create(ROLE_BINDINGS.store_key("dev", "alice-view"), json.dumps(rb).encode())
        authz = RBACAuthorizer(store)
        await authz.start()
        alice = UserInfo("alice", ("system:authenticated",))
        body = {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1", "spec": {}}
        try:
            in_dev = self_subject_rules_review(authz, alice, {**body, "spec": {"namespace": "dev"}})
            in_prod = self_subject_rules_review(authz, alice, {**body, "spec": {"namespace": "prod"}})
            return in_dev, in_prod
        finally:
            await authz.stop()
            await store.close()

    in_dev, in_prod = asyncio.run(run())

    def can(review, verb, resource):
        return any(verb in r["verbs"] and resource in r["resources"] for r in review["status"]["resourceRules"])

    assert can(in_dev, "list", "pods") and not can(in_prod, "list", "pods")
    assert can(in_prod, "create", "selfsubjectaccessreviews")  # system:basic-user, everywhere
    assert any("/version" in r["nonResourceURLs"] for r in in_prod["status"]["nonResourceRules"])
    assert in_dev["status"]["incomplete"] is False


def test_self_subject_review_says_who_the_caller_is():
    from kfab.api.access_review import self_subject_review

    review = self_subject_review(UserInfo("bob", ("dev", "system:authenticated"), "uid-3"),
                                 {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"})
    assert review["kind"] == "SelfSubjectReview" and review["apiVersion"] == "authentication.k8s.io/v1"
    assert review["status"]["userInfo"] == {"username": "bob", "groups": ["dev", "system:authenticated"],
                                            "uid": "uid-3"}


def test_impersonation_needs_the_impersonate_verb(tmp_path):
    from multidict import CIMultiDict

    from kfab.api.impersonation import impersonated_user

    async def run():
        store = await open_store(f"sqlite:///{tmp_path}/state.db")
        await bootstrap_rbac(store)
        authz = RBACAuthorizer(store)
        await authz.start()
        admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
        alice = UserInfo("alice", ("system:authenticated",))
        try:
            as_alice = await impersonated_user(authz, admin, CIMultiDict(
                [("Impersonate-User", "alice"), ("Impersonate-Group", "dev"), ("Impersonate-Group", "ops")]))
            as_sa = await impersonated_user(authz, admin, CIMultiDict(
                [("Impersonate-User", "system:serviceaccount:dev:builder")]))
            plain = await impersonated_user(authz, alice, CIMultiDict())
            with pytest.raises(APIError) as denied:
                await impersonated_user(authz, alice, CIMultiDict([("Impersonate-User", "kubernetes-admin")]))
            with pytest.raises(APIError) as group_only:
                await impersonated_user(authz, admin, CIMultiDict([("Impersonate-Group", "dev")]))
            return as_alice, as_sa, plain, denied.value, group_only.value
        finally:
            await authz.stop()
            await store.close()

    as_alice, as_sa, plain, denied, group_only = asyncio.run(run())
    assert as_alice == UserInfo("alice", ("dev", "ops", "system:authenticated"))
    assert as_sa.groups == ("system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated")
    assert plain.name == "alice"
    assert denied.code == 403 and denied.message == (
        'users "kubernetes-admin" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
        "at the cluster scope")
    assert group_only.code == 400


class _RecordingAuthorizer:
    """Allows everything and records what it was asked, to see the attributes impersonation checks."""

    def __init__(self):
        self.asked = []

    async def authorize(self, attrs):
        self.asked.append(attrs)
        return True, ""


def test_impersonation_checks_each_header_and_builds_groups_as_kubernetes():
    from multidict import CIMultiDict

    from kfab.api.impersonation import impersonated_user

    admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))

    def impersonate(*headers):
        authz = _RecordingAuthorizer()
        user = asyncio.run(impersonated_user(authz, admin, CIMultiDict(headers)))
        return user, [(a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) for a in authz.asked]

    user, asked = impersonate(("Impersonate-User", "eve"), ("Impersonate-Uid", "u-1"),
                              ("Impersonate-Extra-Reason%2Fwhy", "audit"), ("Impersonate-Extra-reason%2fwhy", "x"))
    assert user == UserInfo("eve", ("system:authenticated",), "u-1", (("reason/why", ("audit", "x")),))
    assert asked == [("impersonate", "", "users", "", "", "eve"),
                     ("impersonate", "authentication.k8s.io", "userextras", "reason/why", "", "audit"),
                     ("impersonate", "authentication.k8s.io", "userextras", "reason/why", "", "x"),
                     ("impersonate", "authentication.k8s.io", "uids", "", "", "u-1")]
    anonymous, _ = impersonate(("Impersonate-User", "system:anonymous"))
    assert anonymous.groups == ("system:unauthenticated",)
    unauth, _ = impersonate(("Impersonate-User", "x"), ("Impersonate-Group", "system:unauthenticated"))
    assert unauth.groups == ("system:unauthenticated",)
    sa, asked = impersonate(("Impersonate-User", "system:serviceaccount:ci:builder"), ("Impersonate-Group", "g"))
    assert sa.groups == ("g", "system:authenticated")  # given groups are the authority
    assert asked[0] == ("impersonate", "", "serviceaccounts", "", "ci", "builder")
    with pytest.raises(APIError) as extra_only:
        impersonate(("Impersonate-Extra-scopes", "view"))
    assert extra_only.value.code == 400
