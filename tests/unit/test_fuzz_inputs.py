"""Fuzz (hypothesis) of the parsers hostile input reaches first: label and field selectors, request body
decoding, patches, and inventories. Property: a bad input is refused with the module's own error (APIError,
ProvisionError) naming what is wrong — never another exception (a traceback), never a hang."""

from __future__ import annotations

import json
import string

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kfab.api.decoding import load_json, load_yaml_documents
from kfab.api.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY
from kfab.objects.selectors import parse_field_selector, parse_label_selector
from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory
from tests.fuzz_support import FUZZ, counted, json_values, keys, print_summary

SELECTOR_CHARS = string.ascii_letters + string.digits + "=!,()-_./ \t" + "ínç"
CONFIGMAP = REGISTRY.by_kind("v1", "ConfigMap")
DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
LIVE = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [
                                  {"containerPort": 80}]}]}}}}


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request):
    yield
    print_summary(request.config)


@FUZZ
@given(st.text(SELECTOR_CHARS, max_size=60))
def test_label_selectors_parse_or_say_why(text):
    with counted("label selectors"):
        try:
            parse_label_selector(text).matches({"a": "b"})
        except APIError as e:
            assert e.code == 400 and e.message


@FUZZ
@given(st.text(SELECTOR_CHARS + "[]", max_size=60), st.sampled_from(["Pod", "ConfigMap", "Node", "Event"]))
def test_field_selectors_parse_or_say_why(text, kind):
    with counted("field selectors"):
        try:
            parse_field_selector(text, kind).matches({"metadata": {"name": "x", "namespace": "y"}})
        except APIError as e:
            assert e.code == 400 and e.message


@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                 st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)))
def test_bodies_decode_or_fail_with_value_errors(body):
    with counted("body decoding"):
        for load in (load_json, load_yaml_documents):
            try:
                load(body)
            except (ValueError, UnicodeDecodeError, yaml.YAMLError):
                pass


@FUZZ
@given(json_values, st.sampled_from([JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]))
def test_patches_apply_or_are_refused_with_a_status(patch, patch_type):
    with counted("patches"):
        try:
            result = apply_patch(DEPLOYMENT, LIVE, patch_type, json.dumps(patch).encode())
            json.dumps(result)
        except APIError as e:
            assert 400 <= e.code < 500 and "<class" not in e.message


@FUZZ
@given(st.lists(st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test",
                                                               "frob"]),
                                        "path": st.lists(st.sampled_from(["spec", "metadata", "labels", "0", "-",
                                                                          "template", "containers", "x~1y", ""]),
                                                         max_size=5).map(lambda p: "/" + "/".join(p)),
                                        "value": json_values}), max_size=4))
def test_json_patch_operations_apply_or_are_refused_with_a_status(operations):
    with counted("json patch operations"):
        try:
            apply_patch(DEPLOYMENT, LIVE, JSON_PATCH, json.dumps(operations).encode())
        except APIError as e:
            assert 400 <= e.code < 500 and "<class" not in e.message


inventory_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=15),
              st.sampled_from(["all", "hosts", "children", "vars", "control_plane", "workers", "h1", "h[01:03]",
                               "ansible_host", "ansible_port", "10.0.0.1"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys | st.sampled_from(
        ["all", "hosts", "children", "vars", "h1", "web[1:3]", "ansible_port"]), inner, max_size=4)),
    max_leaves=20)


@FUZZ
@given(text=st.one_of(inventory_values.map(lambda v: yaml.safe_dump(v)),
                      st.text(string.printable, max_size=120).map(lambda t: "[all]\n" + t)))
def test_inventories_load_or_name_the_problem(tmp_path_factory, text):
    with counted("inventories"):
        path = tmp_path_factory.mktemp("inv") / "inventory.yml"
        path.write_text(text)
        try:
            load_inventory(path)
        except ProvisionError as e:
            assert str(e)
