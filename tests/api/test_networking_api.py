"""networking.k8s.io/v1 through real kubectl: Ingress, IngressClass and NetworkPolicy are validated, defaulted
and printed as kube-apiserver does it."""

from __future__ import annotations

import json
import re

from kubernetes import client

from tests.api.test_tables_kubectl import table, row


def ingress(name: str, *, path_type: str | None = "Prefix", port: dict | None = None, host: str = "web.example.com",
            **spec) -> str:
    http_path = {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80} if port is None else port}}}
    if path_type:
        http_path["pathType"] = path_type
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": [{"host": host, "http": {"paths": [http_path]}}], **spec}}
    return json.dumps(body)


def test_ingress_without_path_type_is_refused_with_the_field(kubectl, namespace):
    out = kubectl("apply", "-n", namespace, "-f", "-", input=ingress("web", path_type=None), check=False)
    assert out.returncode != 0
    assert ('The Ingress "web" is invalid: spec.rules[0].http.paths[0].pathType: Required value: '
            "pathType must be specified") in out.stderr


def test_ingress_backend_port_is_a_number_or_a_name_never_both(kubectl, namespace):
    out = kubectl("apply", "-n", namespace, "-f", "-", input=ingress("both", port={"number": 80, "name": "http"}),
                  check=False)
    assert "spec.rules[0].http.paths[0].backend: Invalid value: \"\": cannot set both port name & port number" \
        in out.stderr
    out = kubectl("apply", "-n", namespace, "-f", "-", input=ingress("neither", port={}), check=False)
    assert "spec.rules[0].http.paths[0].backend: Required value: port name or number is required" in out.stderr


def test_ingress_hosts_may_be_wildcards_but_not_ips(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=ingress("wild", host="*.apps.example.com"))
    out = kubectl("apply", "-n", namespace, "-f", "-", input=ingress("mid", host="a.*.example.com"), check=False)
    assert "a wildcard DNS-1123 subdomain must start with '*.'" in out.stderr
    out = kubectl("apply", "-n", namespace, "-f", "-", input=ingress("ip", host="10.0.0.1"), check=False)
    assert 'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address' in out.stderr


def test_unknown_ingress_field_is_refused_under_strict_validation(kubectl, namespace):
    body = json.loads(ingress("typo"))
    body["spec"]["rules"][0]["http"]["paths"][0]["backend"]["servce"] = {}
    out = kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert out.returncode != 0 and "servce" in out.stderr


def test_explain_ingress_describes_path_type(kubectl):
    out = kubectl("explain", "ingress.spec.rules.http.paths.pathType").stdout
    assert "KIND:       Ingress" in out and "Exact" in out


def test_new_ingress_gets_the_default_class_and_prints_its_address(kubectl, k8s, namespace):
    name = f"default-{namespace}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": name, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "example.com/tests"}}))
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=ingress("web", tls=[{"hosts": ["web.example.com"],
                                                                              "secretName": "web-tls"}]))
        net = client.NetworkingV1Api(k8s)
        assert net.read_namespaced_ingress("web", namespace).spec.ingress_class_name == name
        net.patch_namespaced_ingress_status("web", namespace, {"status": {"loadBalancer": {"ingress": [
            {"ip": "10.7.0.21"}, {"ip": "10.7.0.22"}]}}})
        headers, rows = table(kubectl("get", "ingress", "-n", namespace).stdout)
        assert headers == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        assert row(rows, "web")[1:5] == [name, "web.example.com", "10.7.0.21,10.7.0.22", "80, 443"]
        headers, rows = table(kubectl("get", "ingressclass").stdout)
        assert headers == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
        assert row(rows, name)[1:3] == ["example.com/tests", "<none>"]
    finally:
        kubectl("delete", "ingressclass", name, check=False)


def test_ingress_class_controller_cannot_change(kubectl):
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "fixed-controller"},
            "spec": {"controller": "example.com/one"}}
    kubectl("apply", "-f", "-", input=json.dumps(body))
    try:
        body["spec"]["controller"] = "example.com/two"
        out = kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
        assert 'spec.controller: Invalid value: "example.com/two": field is immutable' in out.stderr
    finally:
        kubectl("delete", "ingressclass", "fixed-controller", check=False)


def test_network_policy_defaults_and_prints_its_pod_selector(kubectl, k8s, namespace):
    kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                              "ports": [{"port": 5432}, {"port": 8000, "endPort": 8010}]}],
                 "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}}))
    policy = client.NetworkingV1Api(k8s).read_namespaced_network_policy("db", namespace)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    assert [p.protocol for p in policy.spec.ingress[0].ports] == ["TCP", "TCP"]
    headers, rows = table(kubectl("get", "netpol", "-n", namespace).stdout)
    assert headers == ["NAME", "POD-SELECTOR", "AGE"] and row(rows, "db")[1] == "app=db"


def test_network_policy_bad_peers_and_ports_are_refused(kubectl, namespace):
    out = kubectl("apply", "-n", namespace, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bad"},
        "spec": {"podSelector": {},
                 "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]},
                                        "podSelector": {}}, {}],
                              "ports": [{"port": 90, "endPort": 80}, {"port": "http", "endPort": 90}]}]}}))
    err = out.stderr
    assert re.search(r'spec.ingress\[0\].from\[0\].ipBlock.except\[0\]: Invalid value: "192.168.0.0/24": '
                     r"must be a strict subset of `cidr`", err)
    assert "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer" in err
    assert "spec.ingress[0].from[1]: Required value: must specify a peer" in err
    assert "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`" in err
    assert "spec.ingress[0].ports[1].endPort: Invalid value: 0: may not be specified when `port` is non-numeric" in err


def test_kubectl_create_ingress_sends_protobuf_and_gets_the_ingress_it_means(kubectl, k8s, namespace):
    kubectl("create", "ingress", "simple", "-n", namespace, "--class=kfab", "--default-backend=fallback:http",
            "--rule=foo.example.com/bar*=svc1:8080,tls=foo-tls")
    spec = client.NetworkingV1Api(k8s).read_namespaced_ingress("simple", namespace).spec
    assert spec.ingress_class_name == "kfab"
    assert (spec.default_backend.service.name, spec.default_backend.service.port.name) == ("fallback", "http")
    [rule] = spec.rules
    [path] = rule.http.paths
    assert (rule.host, path.path, path.path_type) == ("foo.example.com", "/bar", "Prefix")
    assert (path.backend.service.name, path.backend.service.port.number) == ("svc1", 8080)
    assert [(t.hosts, t.secret_name) for t in spec.tls] == [(["foo.example.com"], "foo-tls")]
