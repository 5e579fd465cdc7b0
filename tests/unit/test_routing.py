"""Kubernetes paths parse into (resource, namespace, name, subresource) and the right verb."""

import pytest
from multidict import MultiDict

from kfab.objects.errors import APIError
from kfab.api.routing import parse_resource_path, request_verb


def parse(group, version, tail):
    rp = parse_resource_path(group, version, tail)
    return rp.rt.plural, rp.namespace, rp.name, rp.subresource


@pytest.mark.parametrize("group, tail, expected", [
    ("", "pods", ("pods", None, None, None)),
    ("", "namespaces/default/pods", ("pods", "default", None, None)),
    ("", "namespaces/default/pods/web", ("pods", "default", "web", None)),
    ("", "namespaces/default/pods/web/status", ("pods", "default", "web", "status")),
    ("", "namespaces/default/pods/web/binding", ("pods", "default", "web", "binding")),
    ("", "namespaces", ("namespaces", None, None, None)),
    ("", "namespaces/default", ("namespaces", None, "default", None)),
    ("", "namespaces/default/status", ("namespaces", None, "default", "status")),
    ("", "namespaces/default/finalize", ("namespaces", None, "default", "finalize")),
    ("", "nodes/n1", ("nodes", None, "n1", None)),
    ("apps", "namespaces/x/deployments/web/scale", ("deployments", "x", "web", "scale")),
    ("apps", "deployments", ("deployments", None, None, None)),
    ("rbac.authorization.k8s.io", "clusterroles/admin", ("clusterroles", None, "admin", None)),
    ("", "watch/namespaces/default/pods", ("pods", "default", None, None)),
])
def test_paths(group, tail, expected):
    assert parse(group, "v1", tail) == expected


@pytest.mark.parametrize("group, version, tail", [
    ("", "v1", "widgets"),
    ("", "v2", "pods"),
    ("apps", "v1", "pods"),                            # pods are in the core group
    ("", "v1", "namespaces/default/nodes"),            # nodes are cluster-scoped
    ("", "v1", "pods/web"),                            # a pod lives in a namespace
    ("", "v1", "namespaces/default/pods/web/scale"),   # pods have no scale
    ("", "v1", "namespaces/default/pods/web/status/x"),
    ("", "v1", "namespaces//pods"),
])
def test_unknown_paths_are_404(group, version, tail):
    with pytest.raises(APIError) as e:
        parse_resource_path(group, version, tail)
    assert e.value.code == 404


@pytest.mark.parametrize("method, tail, query, verb", [
    ("GET", "namespaces/d/pods", {}, "list"),
    ("GET", "namespaces/d/pods", {"watch": "true"}, "watch"),
    ("GET", "namespaces/d/pods", {"watch": "1"}, "watch"),
    ("GET", "namespaces/d/pods", {"watch": "false"}, "list"),
    ("GET", "watch/namespaces/d/pods", {}, "watch"),
    ("GET", "namespaces/d/pods/p", {}, "get"),
    ("POST", "namespaces/d/pods", {}, "create"),
    ("POST", "namespaces/d/pods/p/binding", {}, "create"),
    ("PUT", "namespaces/d/pods/p", {}, "update"),
    ("PUT", "namespaces/d/pods/p/status", {}, "update"),
    ("PATCH", "namespaces/d/pods/p", {}, "patch"),
    ("DELETE", "namespaces/d/pods/p", {}, "delete"),
    ("DELETE", "namespaces/d/pods", {}, "deletecollection"),
])
def test_verbs(method, tail, query, verb):
    rp = parse_resource_path("", "v1", tail)
    assert request_verb(method, rp, MultiDict(query)) == verb


@pytest.mark.parametrize("method, tail", [("POST", "namespaces/d/pods/p"), ("PUT", "namespaces/d/pods"),
                                          ("PATCH", "namespaces/d/pods"), ("DELETE", "namespaces/d/pods/p/status")])
def test_methods_a_path_does_not_take_are_405(method, tail):
    rp = parse_resource_path("", "v1", tail)
    with pytest.raises(APIError) as e:
        request_verb(method, rp, MultiDict())
    assert e.value.code == 405
