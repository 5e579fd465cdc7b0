"""Pod Security admission through real kubectl: namespace labels enforce, warn about, and audit the Pod
Security Standards with kube's texts; exemptions from a PodSecurityConfiguration."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import run_kubectl, start_server, stop_server, user_kubeconfig

PRIVILEGED = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
              "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
PLAIN = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
RESTRICTED_OK = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tight"},
                 "spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                          "containers": [{"name": "c", "image": "busybox",
                                          "securityContext": {"allowPrivilegeEscalation": False,
                                                              "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-psa")
    config = data_dir / "pod-security.yaml"
    config.write_text("apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
                      "defaults: {enforce: privileged, warn: privileged, audit: privileged}\n"
                      "exemptions: {usernames: [ops-robot], namespaces: [], runtimeClasses: [kata]}\n")
    proc, server = start_server(data_dir, "--pod-security-config", str(config))
    out = tmp_path_factory.mktemp("kubeconfigs")
    try:
        yield {"admin": server.kubeconfig,
               "robot": user_kubeconfig(data_dir, out, "ops-robot", "system:masters")}
    finally:
        stop_server(proc)


def kubectl(cluster, *args, input=None, who="admin"):
    return run_kubectl(cluster[who], *args, input=input)


def namespace(cluster, name: str, **labels: str) -> str:
    assert kubectl(cluster, "create", "namespace", name).returncode == 0
    if labels:
        assert kubectl(cluster, "label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()]).returncode == 0
    return name


def create(cluster, ns: str, obj: dict, who: str = "admin"):
    return kubectl(cluster, "create", "-n", ns, "-f", "-", input=json.dumps(obj), who=who)


def test_enforce_baseline_refuses_a_privileged_pod_in_kubes_words(cluster):
    ns = namespace(cluster, "enforced", **{"pod-security.kubernetes.io/enforce": "baseline"})
    refused = create(cluster, ns, PRIVILEGED)
    assert refused.returncode != 0
    assert ('pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set '
            "securityContext.privileged=true)") in refused.stderr
    assert kubectl(cluster, "get", "pod", "x", "-n", ns).returncode != 0
    host = dict(PRIVILEGED, metadata={"name": "h"}, spec={
        "hostNetwork": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}]}]})
    refused = create(cluster, ns, host)
    assert ('violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPath volumes '
            '(volume "root"), hostPort (container "c" uses hostPort 80)') in refused.stderr
    assert create(cluster, ns, PLAIN).returncode == 0, "baseline admits a pod asking for nothing"
    kubectl(cluster, "label", "namespace", ns, "pod-security.kubernetes.io/enforce-version=v1.30")
    refused = create(cluster, ns, PRIVILEGED)
    assert 'violates PodSecurity "baseline:v1.30"' in refused.stderr


def test_warn_restricted_admits_but_kubectl_prints_the_warning(cluster):
    ns = namespace(cluster, "warned", **{"pod-security.kubernetes.io/warn": "restricted"})
    made = create(cluster, ns, PLAIN)
    assert made.returncode == 0
    assert ('Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container '
            '"c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" '
            'must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must '
            'set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")') in made.stderr
    quiet = create(cluster, ns, RESTRICTED_OK)
    assert quiet.returncode == 0 and "Warning" not in quiet.stderr
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": PRIVILEGED["spec"]}}}
    made = create(cluster, ns, deployment)
    assert made.returncode == 0 and 'would violate PodSecurity "restricted:latest": privileged' in made.stderr


def test_tightening_a_namespace_warns_about_its_existing_pods(cluster):
    ns = namespace(cluster, "tightened")
    for i in range(3):
        assert create(cluster, ns, dict(PLAIN, metadata={"name": f"p{i}"})).returncode == 0
    assert create(cluster, ns, RESTRICTED_OK).returncode == 0
    changed = kubectl(cluster, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    assert changed.returncode == 0
    assert ('Warning: existing pods in namespace "tightened" violate the new PodSecurity enforce level '
            '"restricted:latest"') in changed.stderr
    assert ("Warning: p0 (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, "
            "runAsNonRoot != true, seccompProfile") in changed.stderr
    assert kubectl(cluster, "get", "pod", "p1", "-n", ns).returncode == 0, "existing pods keep running"


def test_exempt_users_and_runtime_classes_pass(cluster):
    ns = namespace(cluster, "exempt", **{"pod-security.kubernetes.io/enforce": "restricted"})
    assert create(cluster, ns, PRIVILEGED, who="robot").returncode == 0
    kata = dict(PRIVILEGED, metadata={"name": "k"}, spec=dict(PRIVILEGED["spec"], runtimeClassName="kata"))
    assert create(cluster, ns, kata).returncode == 0
    assert create(cluster, ns, dict(PRIVILEGED, metadata={"name": "y"})).returncode != 0
