"""Whoever may write RBAC objects still cannot grant more than they hold (Kubernetes' escalation check)."""

from __future__ import annotations

import time

from tests.api.conftest import run_kubectl as as_user
from tests.api.conftest import user_kubeconfig


def test_rbac_writer_cannot_grant_what_they_lack(kfab_server, kubectl, namespace, tmp_path):
    kubectl("create", "role", "binder", "-n", namespace, "--verb=create,get,list", "--resource=roles,rolebindings")
    kubectl("create", "role", "cm-reader", "-n", namespace, "--verb=get,list", "--resource=configmaps")
    kubectl("create", "rolebinding", "dave-binder", "-n", namespace, "--role=binder", "--user=dave")
    kubectl("create", "rolebinding", "dave-reader", "-n", namespace, "--role=cm-reader", "--user=dave")
    dave = user_kubeconfig(kfab_server.data_dir, tmp_path, "dave")
    deadline = time.monotonic() + 20  # the authorizer's cache follows the store's watch
    while as_user(dave, "auth", "can-i", "list", "configmaps", "-n", namespace).stdout.strip() != "yes":
        assert time.monotonic() < deadline, "dave's bindings never took effect"
        time.sleep(0.1)

    admin = as_user(dave, "create", "rolebinding", "dave-admin", "-n", namespace, "--clusterrole=cluster-admin",
                    "--user=dave")
    assert admin.returncode != 0 and "is forbidden" in admin.stderr
    wider = as_user(dave, "create", "role", "pod-killer", "-n", namespace, "--verb=delete", "--resource=pods")
    assert wider.returncode != 0 and "is forbidden" in wider.stderr
    assert kubectl("get", "roles,rolebindings", "-n", namespace, "-o", "name").stdout.split() == [
        "role.rbac.authorization.k8s.io/binder", "role.rbac.authorization.k8s.io/cm-reader",
        "rolebinding.rbac.authorization.k8s.io/dave-binder", "rolebinding.rbac.authorization.k8s.io/dave-reader"]

    # within what dave holds, he may share it
    same = as_user(dave, "create", "role", "cm-reader-2", "-n", namespace, "--verb=get", "--resource=configmaps")
    assert same.returncode == 0, same.stderr
    share = as_user(dave, "create", "rolebinding", "erin-reader", "-n", namespace, "--role=cm-reader", "--user=erin")
    assert share.returncode == 0, share.stderr
