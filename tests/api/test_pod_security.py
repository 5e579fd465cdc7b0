"""Pod Security admission through real kubectl as the admin, an exempt user and a ServiceAccount: namespace
labels enforce and warn about the Pod Security Standards at a level and version with kube's texts (audit mode:
tests/api/test_audit_log.py); invalid labels refused; exemptions from a PodSecurityConfiguration."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import run_kubectl, service_account_kubeconfig, start_server, stop_server, user_kubeconfig

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
        yield {"admin": server.kubeconfig, "server": server, "out": out,
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


def test_apparmor_host_process_and_probe_hosts_are_baseline_checks(cluster):
    ns = namespace(cluster, "baseline-more", **{"pod-security.kubernetes.io/enforce": "baseline"})
    unconfined = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "aa", "annotations": {
                      "container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
                  "spec": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}},
                           "containers": [{"name": "c", "image": "busybox"}]}}
    refused = create(cluster, ns, unconfined)
    assert ('violates PodSecurity "baseline:latest": forbidden AppArmor profiles (pod and annotation must not set '
            'AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/c='
            '"unconfined"")') in refused.stderr, refused.stderr
    allowed = dict(unconfined, metadata={"name": "aa-ok", "annotations": {
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/k8s-nginx"}},
        spec={"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
              "containers": PLAIN["spec"]["containers"]})
    assert create(cluster, ns, allowed).returncode == 0
    host_process = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hp"},
                    "spec": {"hostNetwork": True, "containers": [
                        {"name": "c", "image": "busybox",
                         "securityContext": {"windowsOptions": {"hostProcess": True}},
                         "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]}}
    refused = create(cluster, ns, host_process)
    assert ('probe or lifecycle host (container "c" uses probe or lifecycle host "10.0.0.1"), hostProcess '
            '(container "c" must not set securityContext.windowsOptions.hostProcess=true)') in refused.stderr, \
        refused.stderr


def test_the_version_label_picks_the_checks_of_that_release(cluster):
    sysctl = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tuned"},
              "spec": {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]},
                       "containers": [{"name": "c", "image": "busybox",
                                       "livenessProbe": {"tcpSocket": {"host": "db", "port": 5432}}}]}}
    old = namespace(cluster, "v126", **{"pod-security.kubernetes.io/enforce": "baseline",
                                        "pod-security.kubernetes.io/enforce-version": "v1.26"})
    refused = create(cluster, old, sysctl)
    assert ('violates PodSecurity "baseline:v1.26": forbidden sysctls (net.ipv4.tcp_keepalive_time)'
            in refused.stderr), "v1.29 allowed that sysctl; v1.26 did not"
    assert "probe or lifecycle host" not in refused.stderr, "a v1.34 check"
    new = namespace(cluster, "v133", **{"pod-security.kubernetes.io/enforce": "baseline",
                                        "pod-security.kubernetes.io/enforce-version": "v1.33"})
    assert create(cluster, new, sysctl).returncode == 0
    root = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 0,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": "busybox", "securityContext": {
                         "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    before = namespace(cluster, "r122", **{"pod-security.kubernetes.io/enforce": "restricted",
                                           "pod-security.kubernetes.io/enforce-version": "v1.22"})
    assert create(cluster, before, root).returncode == 0, "runAsUser=0 is a restricted check from v1.23"
    latest = namespace(cluster, "rlatest", **{"pod-security.kubernetes.io/enforce": "restricted"})
    assert 'runAsUser=0 (pod must not set runAsUser=0)' in create(cluster, latest, root).stderr
    windows = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "win"},
               "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True},
                        "containers": [{"name": "c", "image": "busybox"}]}}
    assert create(cluster, latest, windows).returncode == 0, "from v1.25 Windows pods skip the Linux-only checks"


def test_invalid_labels_are_refused_in_kubes_words(cluster):
    made = kubectl(cluster, "create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "typo", "labels": {
            "pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/warn-version": "1.30"}}}))
    assert made.returncode != 0
    # kubectl lists the causes of a 422 one a line
    assert ('The Namespace "typo" is invalid: \n'
            '* metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of '
            'privileged, baseline, restricted\n'
            '* metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": must be "latest" '
            'or "v1.x"') in made.stderr, made.stderr
    ns = namespace(cluster, "relabel")
    refused = kubectl(cluster, "label", "namespace", ns, "pod-security.kubernetes.io/audit=Restricted")
    assert refused.returncode != 0 and 'must be one of privileged, baseline, restricted' in refused.stderr


def test_a_service_accounts_pods_are_held_to_the_namespace_level(cluster):
    ns = namespace(cluster, "team", **{"pod-security.kubernetes.io/enforce": "baseline"})
    server = cluster["server"]
    assert kubectl(cluster, "create", "rolebinding", "deployer", "--clusterrole=edit",
                   "--serviceaccount=team:deployer", "-n", ns).returncode == 0
    deployer = service_account_kubeconfig(server.kubeconfig, server.url, server.data_dir / "pki" / "ca.crt",
                                          cluster["out"], ns, "deployer")
    pod = dict(PRIVILEGED, spec=dict(PRIVILEGED["spec"], serviceAccountName="deployer"))
    refused = run_kubectl(deployer, "create", "-n", ns, "-f", "-", input=json.dumps(pod))
    assert refused.returncode != 0 and 'violates PodSecurity "baseline:latest": privileged' in refused.stderr
    plain = dict(PLAIN, spec=dict(PLAIN["spec"], serviceAccountName="deployer"))
    made = run_kubectl(deployer, "create", "-n", ns, "-f", "-", input=json.dumps(plain))
    assert made.returncode == 0, made.stderr
