"""Label and field selectors match exactly what Kubernetes matches."""

import pytest

from kfab.objects.errors import APIError
from kfab.objects.selectors import (parse_field_selector, parse_label_selector, selector_from_object)

WEB = {"app": "web", "tier": "frontend", "release": "3"}
DB = {"app": "db"}


@pytest.mark.parametrize("text, web, db, none", [
    ("", True, True, True),
    ("app=web", True, False, False),
    ("app==web", True, False, False),
    ("app!=web", False, True, True),  # a missing label is "not equal"
    ("app in (web, db)", True, True, False),
    ("app notin (web)", False, True, True),
    ("tier", True, False, False),
    ("!tier", False, True, True),
    ("app=web,tier=frontend", True, False, False),
    ("app=web,tier=backend", False, False, False),
    ("release>2", True, False, False),
    ("release<2", False, False, False),
    ("app in (web),!missing", True, False, False),
    ("  app = web ,  tier  ", True, False, False),
])
def test_label_selector_matches_like_kubernetes(text, web, db, none):
    sel = parse_label_selector(text)
    assert sel.matches(WEB) is web
    assert sel.matches(DB) is db
    assert sel.matches(None) is none


@pytest.mark.parametrize("text", ["app=", "app="])
def test_empty_value_matches_only_empty_label(text):
    sel = parse_label_selector(text)
    assert sel.matches({"app": ""})
    assert not sel.matches({"app": "x"})
    assert not sel.matches({})


@pytest.mark.parametrize("text", ["app in ()", "=web", "app=(web)", "app in web", "a b", "app=web,", "release>x",
                                  "-bad=1", "app=bad value"])
def test_malformed_label_selector_is_a_400_naming_it(text):
    with pytest.raises(APIError) as e:
        parse_label_selector(text)
    assert e.value.code == 400
    assert "unable to parse requirement" in e.value.message


def test_label_selector_keys_with_prefix():
    sel = parse_label_selector("app.kubernetes.io/name=nginx")
    assert sel.matches({"app.kubernetes.io/name": "nginx"})


def test_label_selector_object_match_labels_and_expressions():
    sel = selector_from_object({"matchLabels": {"app": "web"},
                                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]},
                                                     {"key": "canary", "operator": "DoesNotExist"}]})
    assert sel.matches(WEB)
    assert not sel.matches(dict(WEB, canary="true"))
    assert not sel.matches(DB)
    assert str(sel) == "app=web,tier in (frontend),!canary"


def test_nil_label_selector_matches_nothing_and_empty_matches_everything():
    assert not selector_from_object(None).matches(WEB)
    assert selector_from_object({}).matches(WEB)
    assert selector_from_object({}).matches({})


@pytest.mark.parametrize("expr", [{"key": "a", "operator": "In", "values": []},
                                  {"key": "a", "operator": "Exists", "values": ["x"]},
                                  {"key": "a", "operator": "Maybe"},
                                  {"operator": "Exists"}])
def test_bad_match_expressions_are_refused(expr):
    with pytest.raises(ValueError):
        selector_from_object({"matchExpressions": [expr]})


POD = {"metadata": {"name": "web-1", "namespace": "prod"},
       "spec": {"nodeName": "node-a", "hostNetwork": False}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("text, matches", [
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("metadata.namespace=prod,status.phase=Running", True),
    ("spec.nodeName=node-b", False),
    ("spec.nodeName=", False),
    ("spec.hostNetwork=false", True),
    ("status.phase!=Pending", True),
])
def test_field_selector_on_pods(text, matches):
    assert parse_field_selector(text, "Pod").matches(POD) is matches


def test_unscheduled_pod_has_empty_node_name():
    pod = {"metadata": {"name": "x"}, "spec": {}}
    assert parse_field_selector("spec.nodeName=", "Pod").matches(pod)


def test_field_selector_escaped_comma():
    sel = parse_field_selector(r"metadata.name=a\,b", "ConfigMap")
    assert sel.matches({"metadata": {"name": "a,b"}})


def test_unsupported_field_is_a_400():
    with pytest.raises(APIError) as e:
        parse_field_selector("spec.nodeName=x", "ConfigMap")
    assert e.value.code == 400
    assert "field label not supported: spec.nodeName" in e.value.message


def test_exact_name_of_field_selector():
    assert parse_field_selector("metadata.name=x", "Pod").exact_name() == "x"
    assert parse_field_selector("metadata.name!=x", "Pod").exact_name() is None
