"""Impersonation (`kubectl --as USER --as-group G`): allowed only with the `impersonate` verb, then authorized
as the impersonated user; judged by real kubectl and the official client."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.conftest import run_kubectl, user_kubeconfig
from tests.waiting import wait_until


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _whoami(kubeconfig, *as_args: str) -> dict:
    proc = run_kubectl(kubeconfig, "auth", "whoami", "-o", "json", *as_args, check=True)
    return json.loads(proc.stdout)["status"]["userInfo"]


IMPERSONATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
- apiGroups: [""]
  resources: ["users"]
  verbs: ["impersonate"]
  resourceNames: ["{target}"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: {user}
"""


def test_admin_acts_as_a_user_and_gets_exactly_their_rights(kfab_server, namespace):
    admin = kfab_server.kubeconfig
    user, group = _unique("alice"), _unique("dev")
    assert _whoami(admin, "--as", user, "--as-group", group) == {
        "username": user, "groups": [group, "system:authenticated"]}

    denied = run_kubectl(admin, "get", "configmaps", "-n", namespace, "--as", user)
    assert denied.returncode != 0
    assert (f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" '
            f'in the namespace "{namespace}"') in denied.stderr

    run_kubectl(admin, "create", "rolebinding", f"{group}-edit", "--clusterrole=edit", f"--group={group}",
                "-n", namespace, check=True)
    wait_until(f"{user} in {group} to be allowed to create configmaps",
               lambda: run_kubectl(admin, "auth", "can-i", "create", "configmaps", "-n", namespace,
                                   "--as", user, "--as-group", group).returncode == 0)
    run_kubectl(admin, "create", "configmap", "made-as-alice", "-n", namespace, "--from-literal=a=b",
                "--as", user, "--as-group", group, check=True)
    # The group is granted only when asked for: the same user without it is still refused.
    alone = run_kubectl(admin, "auth", "can-i", "create", "configmaps", "-n", namespace, "--as", user)
    assert (alone.returncode, alone.stdout.strip()) == (1, "no")
    assert run_kubectl(admin, "delete", "configmap", "made-as-alice", "-n", namespace, "--as", user).returncode != 0


def test_a_service_account_is_impersonated_with_its_groups(kfab_server):
    sa = "system:serviceaccount:ci:builder"
    assert _whoami(kfab_server.kubeconfig, "--as", sa) == {
        "username": sa,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]}
    # Groups given explicitly are the authority (as in kube-apiserver): no ServiceAccount groups are added.
    assert _whoami(kfab_server.kubeconfig, "--as", sa, "--as-group", "ci-robots")["groups"] == [
        "ci-robots", "system:authenticated"]


def test_user_without_the_impersonate_verb_gets_kubernetes_forbidden(kfab_server, tmp_path):
    bob_name = _unique("bob")
    bob = user_kubeconfig(kfab_server.data_dir, tmp_path, bob_name)
    proc = run_kubectl(bob, "get", "pods", "-n", "default", "--as", "kubernetes-admin")
    assert proc.returncode != 0
    assert (f'Error from server (Forbidden): users "kubernetes-admin" is forbidden: User "{bob_name}" cannot '
            f'impersonate resource "users" in API group "" at the cluster scope') in proc.stderr
    sa = run_kubectl(bob, "get", "pods", "--as", "system:serviceaccount:kube-system:default")
    assert (f'serviceaccounts "default" is forbidden: User "{bob_name}" cannot impersonate resource '
            f'"serviceaccounts" in API group "" in the namespace "kube-system"') in sa.stderr


def test_impersonate_rights_are_per_name_and_groups_are_checked_too(kfab_server, tmp_path):
    carol, target = _unique("carol"), _unique("alice")
    carol_config = user_kubeconfig(kfab_server.data_dir, tmp_path, carol)
    run_kubectl(kfab_server.kubeconfig, "apply", "-f", "-", check=True,
                input=IMPERSONATOR.format(name=f"impersonate-{carol}", target=target, user=carol))
    try:
        info = wait_until(f"{carol} to be allowed to impersonate {target}",
                          lambda: run_kubectl(carol_config, "auth", "whoami", "-o", "json", "--as", target), 20)
        assert json.loads(info.stdout)["status"]["userInfo"]["username"] == target
        other = run_kubectl(carol_config, "get", "pods", "--as", "kubernetes-admin")
        assert other.returncode != 0 and 'users "kubernetes-admin" is forbidden' in other.stderr
        # Impersonating a permitted user does not let carol add a group (system:masters would be everything).
        masters = run_kubectl(carol_config, "get", "nodes", "--as", target, "--as-group", "system:masters")
        assert masters.returncode != 0
        assert (f'groups "system:masters" is forbidden: User "{carol}" cannot impersonate resource "groups" '
                f'in API group "" at the cluster scope') in masters.stderr
    finally:
        run_kubectl(kfab_server.kubeconfig, "delete", "clusterrole,clusterrolebinding", f"impersonate-{carol}",
                    check=True)


def test_official_client_impersonates_with_headers(kfab_server, tmp_path):
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(kfab_server.kubeconfig))
    try:
        api_client.set_default_header("Impersonate-User", "dora")
        api_client.set_default_header("Impersonate-Extra-Scopes", "view")
        review = client.AuthenticationV1Api(api_client).create_self_subject_review({})
        assert review.status.user_info.username == "dora"
        assert review.status.user_info.groups == ["system:authenticated"]
        assert review.status.user_info.extra == {"scopes": ["view"]}
        with pytest.raises(client.ApiException) as forbidden:
            client.CoreV1Api(api_client).list_namespace()
        assert forbidden.value.status == 403
        assert json.loads(forbidden.value.body)["message"] == (
            'namespaces is forbidden: User "dora" cannot list resource "namespaces" in API group "" '
            "at the cluster scope")
    finally:
        api_client.close()

    group_only = config.new_client_from_config(config_file=str(kfab_server.kubeconfig))
    try:
        group_only.set_default_header("Impersonate-Group", "dev")
        with pytest.raises(client.ApiException) as bad:
            client.CoreV1Api(group_only).list_namespace()
        assert bad.value.status == 400 and json.loads(bad.value.body)["reason"] == "BadRequest"
    finally:
        group_only.close()
