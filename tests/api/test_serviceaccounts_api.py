"""Service accounts as in Kubernetes, through real kubectl and the official client: the default ServiceAccount
and kube-root-ca.crt in every namespace (kept by controllers), `kubectl create token` tokens that
authenticate as the ServiceAccount with its RBAC and die with it, the projected token volume pods get, and
node agents getting tokens only for pods bound to them."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from kubernetes import client

from kfab.client import Client, rt_of
from kfab.node.serviceaccount_tokens import ServiceAccountTokens, TokenFetchError
from kfab.pki import write_kubeconfig
from tests.api.conftest import exists, run_kubectl, user_kubeconfig
from tests.waiting import wait_until

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture
def core(k8s):
    return client.CoreV1Api(k8s)


def token_kubeconfig(kfab_server, tmp_path, token: str):
    """What an in-cluster client has: the server, the CA, a bearer token (no client certificate)."""
    return write_kubeconfig(tmp_path / f"token-{abs(hash(token))}.kubeconfig", kfab_server.url,
                            (kfab_server.data_dir / "pki" / "ca.crt").read_bytes(), token=token, user="sa")


def test_every_namespace_has_a_default_service_account_and_the_root_ca(kfab_server, core, namespace):
    wait_until("default SA", lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)), 10)
    cm = wait_until("kube-root-ca.crt",
                    lambda: exists(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace)) and
                    core.read_namespaced_config_map("kube-root-ca.crt", namespace), 10)
    assert cm.data == {"ca.crt": (kfab_server.data_dir / "pki" / "ca.crt").read_text()}
    # Deleted or edited, both come back as they were.
    core.delete_namespaced_service_account("default", namespace)
    core.patch_namespaced_config_map("kube-root-ca.crt", namespace, {"data": {"ca.crt": "tampered"}})
    wait_until("default SA", lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)), 10)
    wait_until("kube-root-ca.crt restored",
               lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace).data == cm.data, 10)


def test_created_token_authenticates_with_the_accounts_rbac_until_it_is_deleted(kfab_server, kubectl, namespace,
                                                                              tmp_path):
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    token = kubectl("create", "token", "app", "-n", namespace, "--duration", "15m").stdout.strip()
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                      for part in token.split(".")[:2])
    assert header["alg"] == "ES256"
    assert claims["sub"] == f"system:serviceaccount:{namespace}:app"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["kubernetes.io"]["namespace"] == namespace
    config = token_kubeconfig(kfab_server, tmp_path, token)

    whoami = run_kubectl(config, "auth", "whoami", "-o", "json", check=True).stdout
    status = json.loads(whoami)["status"]["userInfo"]
    assert status["username"] == f"system:serviceaccount:{namespace}:app"
    assert status["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated"]
    refused = run_kubectl(config, "get", "pods", "-n", namespace)
    assert refused.returncode != 0
    assert (f'User "system:serviceaccount:{namespace}:app" cannot list resource "pods" in API group "" in the '
            f'namespace "{namespace}"') in refused.stderr
    kubectl("create", "rolebinding", "app-view", "--clusterrole=view", f"--serviceaccount={namespace}:app",
            "-n", namespace)
    wait_until("RBAC to allow", lambda: run_kubectl(config, "get", "pods", "-n", namespace).returncode == 0, 10)
    assert run_kubectl(config, "get", "secrets", "-n", namespace).returncode != 0   # view has no secrets

    kubectl("delete", "serviceaccount", "app", "-n", namespace)
    gone = run_kubectl(config, "get", "pods", "-n", namespace)
    assert gone.returncode != 0 and "You must be logged in to the server (Unauthorized)" in gone.stderr


def test_token_requests_are_validated_and_bound_tokens_die_with_their_pod(kfab_server, kubectl, core, namespace,
                                                                          tmp_path):
    wait_until("default SA", lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)), 10)
    short = kubectl("create", "token", "default", "-n", namespace, "--duration", "5m", check=False)
    assert short.returncode != 0
    assert ('TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: Invalid value: 300: '
            "may not specify a duration less than 10 minutes") in short.stderr
    missing = kubectl("create", "token", "nobody", "-n", namespace, check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr
    # A token for another audience is not one the API server accepts.
    other = kubectl("create", "token", "default", "-n", namespace, "--audience", "vault").stdout.strip()
    assert run_kubectl(token_kubeconfig(kfab_server, tmp_path, other), "auth", "whoami").returncode != 0

    kubectl("run", "holder", "--image=busybox", "-n", namespace)
    bound = kubectl("create", "token", "default", "-n", namespace, "--bound-object-kind", "Pod",
                    "--bound-object-name", "holder").stdout.strip()
    config = token_kubeconfig(kfab_server, tmp_path, bound)
    whoami = json.loads(run_kubectl(config, "auth", "whoami", "-o", "json", check=True).stdout)
    extra = whoami["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["holder"]
    kubectl("delete", "pod", "holder", "-n", namespace, "--grace-period=0", "--force")
    wait_until("the bound token to be refused", lambda: run_kubectl(config, "auth", "whoami").returncode != 0, 10)


def test_pods_get_the_projected_token_volume_unless_automount_is_off(kubectl, core, namespace):
    wait_until("default SA", lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)), 10)
    kubectl("run", "mounted", "--image=busybox", "-n", namespace)
    pod = core.read_namespaced_pod("mounted", namespace)
    volume = next(v for v in pod.spec.volumes if v.name.startswith("kube-api-access-"))
    sources = volume.projected.sources
    assert sources[0].service_account_token.expiration_seconds == 3607
    assert sources[1].config_map.name == "kube-root-ca.crt"
    assert sources[2].downward_api.items[0].field_ref.field_path == "metadata.namespace"
    mount = pod.spec.containers[0].volume_mounts[0]
    assert (mount.name, mount.mount_path, mount.read_only) == (volume.name, MOUNT, True)

    kubectl("run", "plain", "--image=busybox", "-n", namespace,
            "--overrides", '{"spec":{"automountServiceAccountToken":false}}')
    assert not core.read_namespaced_pod("plain", namespace).spec.volumes
    refused = kubectl("run", "ghost", "--image=busybox", "-n", namespace,
                      "--overrides", '{"spec":{"serviceAccountName":"ghost"}}', check=False)
    assert refused.stderr.strip() == (f'Error from server (Forbidden): pods "ghost" is forbidden: error looking up '
                                      f'service account {namespace}/ghost: serviceaccount "ghost" not found')


def test_a_node_gets_tokens_only_for_pods_bound_to_it(kfab_server, core, namespace, tmp_path):
    wait_until("default SA", lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)), 10)
    for name, node in (("mine", "sa-node-a"), ("theirs", "sa-node-b")):
        core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": {
            "nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
    config = user_kubeconfig(kfab_server.data_dir, tmp_path, "system:node:sa-node-a", "system:nodes")
    source = {"path": "token", "expirationSeconds": 3607}

    async def fetch(name: str) -> str:
        async with Client.from_kubeconfig(config) as api:
            pod = await api.get(rt_of("Pod"), namespace, name)
            return await ServiceAccountTokens(api).token(pod, source)

    token = asyncio.run(fetch("mine"))
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["kubernetes.io"]["pod"]["name"] == "mine"
    assert claims["exp"] - claims["iat"] == 3607

    async def renewals() -> list[str]:
        """The kubelet's rule: the same token until 80% of its lifetime has passed, then a new one."""
        now = [1000.0]
        async with Client.from_kubeconfig(config) as api:
            pod = await api.get(rt_of("Pod"), namespace, "mine")
            tokens = ServiceAccountTokens(api, clock=lambda: now[0])
            got = [await tokens.token(pod, source)]
            now[0] += 0.79 * 3607
            got.append(await tokens.token(pod, source))
            now[0] += 0.02 * 3607
            got.append(await tokens.token(pod, source))
            return got
    first, before, after = asyncio.run(renewals())
    assert first == before != after
    with pytest.raises(TokenFetchError) as refused:
        asyncio.run(fetch("theirs"))
    assert "node requested token bound to a pod scheduled on a different node" in str(refused.value)

