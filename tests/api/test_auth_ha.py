"""HA: RBAC granted through one API server is enforced by the other, also after an etcd member dies."""

from __future__ import annotations

import contextlib

import pytest

from kfab.pki import write_kubeconfig
from tests.api.conftest import run_kubectl, stop_server, user_kubeconfig
from tests.etcd_cluster import EtcdCluster
from tests.store.apiservers import start_apiserver
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def two_api_servers(tmp_path_factory):
    with EtcdCluster() as etcd, contextlib.ExitStack() as stack:
        a_dir, b_dir = tmp_path_factory.mktemp("auth-apiserver-a"), tmp_path_factory.mktemp("auth-apiserver-b")
        proc_a, a = start_apiserver(a_dir, etcd.url)
        stack.callback(stop_server, proc_a)
        proc_b, b = start_apiserver(b_dir, etcd.url, pki_from=a_dir)
        stack.callback(stop_server, proc_b)
        yield etcd, a, b


def test_binding_made_through_one_api_server_is_enforced_by_the_other(two_api_servers, tmp_path):
    etcd, a, b = two_api_servers
    hana = user_kubeconfig(a.data_dir, tmp_path, "hana", server=b.url)  # a user talking to API server B only

    assert run_kubectl(hana, "get", "configmaps", "-n", "default").returncode != 0
    assert run_kubectl(a.kubeconfig, "create", "rolebinding", "hana-view", "--clusterrole=view", "--user=hana",
                    "-n", "default").returncode == 0
    wait_until("API server B to allow what a binding made through A grants",
               lambda: run_kubectl(hana, "get", "configmaps", "-n", "default").returncode == 0)

    # With an etcd member gone, B's RBAC cache still follows changes made through A.
    etcd.stop_member(0, kill=True)
    try:
        assert run_kubectl(a.kubeconfig, "delete", "rolebinding", "hana-view", "-n", "default").returncode == 0
        wait_until("API server B to stop allowing what a deleted binding granted",
                   lambda: run_kubectl(hana, "auth", "can-i", "list", "configmaps", "-n", "default").stdout.strip()
                    == "no")
        assert run_kubectl(a.kubeconfig, "create", "rolebinding", "hana-edit", "--clusterrole=edit", "--user=hana",
                        "-n", "default").returncode == 0
        wait_until("API server B to allow writes granted through A",
                   lambda: run_kubectl(hana, "create", "configmap", "from-hana", "-n", "default",
                                     "--from-literal=a=b").returncode == 0)
    finally:
        etcd.start_member(0)
        run_kubectl(a.kubeconfig, "delete", "rolebinding", "hana-edit", "-n", "default")
        run_kubectl(a.kubeconfig, "delete", "configmap", "from-hana", "-n", "default")


def test_a_service_account_token_from_one_api_server_authenticates_at_the_other(two_api_servers, tmp_path):
    """Both sign and verify with the cluster's one service-account key (pki/sa.key)."""
    etcd, a, b = two_api_servers
    assert run_kubectl(a.kubeconfig, "create", "serviceaccount", "roamer", "-n", "default").returncode == 0
    token = run_kubectl(a.kubeconfig, "create", "token", "roamer", "-n", "default", check=True).stdout.strip()
    at_b = write_kubeconfig(tmp_path / "roamer.kubeconfig", b.url, (b.data_dir / "pki" / "ca.crt").read_bytes(),
                            token=token, user="roamer")
    whoami = run_kubectl(at_b, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", check=True)
    assert whoami.stdout == "system:serviceaccount:default:roamer"
