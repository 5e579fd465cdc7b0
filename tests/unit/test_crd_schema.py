"""A custom resource against its CRD's structural schema, and the CRD's own rules, in kube-apiserver's words."""

from __future__ import annotations

import subprocess
import sys

from kfab.objects import crd_schema
from kfab.objects.validation.apiextensions import validate_crd

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "port": {"x-kubernetes-int-or-string": True},
    "note": {"type": "string", "nullable": True},
    "size": {"type": "integer", "minimum": 1, "exclusiveMaximum": True, "maximum": 10},
    "ip": {"type": "string", "format": "ipv4"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
}}}}


def messages(obj: dict) -> list[str]:
    return [f"{c.field}: {c.message}" for c in crd_schema.validate(SCHEMA, obj)]


def test_int_or_string_nullable_and_maps_take_what_they_should():
    assert messages({"spec": {"port": 80, "note": None, "labels": {"a": "b"}}}) == []
    assert messages({"spec": {"port": "http"}}) == []
    assert messages({"spec": {"labels": {"a": 1}}}) == [
        'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"']


def test_ranges_formats_and_sets_are_worded_as_go_openapi():
    assert messages({"spec": {"size": 10, "ip": "10.0.0.300", "tags": ["a", "a"]}}) == [
        "spec.size: Invalid value: 10: spec.size in body should be less than 10",
        'spec.ip: Invalid value: "10.0.0.300": spec.ip in body must be of type ipv4: "10.0.0.300"',
        'spec.tags[1]: Duplicate value: "a"']


def test_pruning_drops_unknown_fields_but_keeps_preserved_ones():
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
           "spec": {"free": {"any": {"thing": 1}}, "items": [{"name": "n", "extra": 1}], "zap": 2}, "top": 1}
    assert crd_schema.prune(SCHEMA, obj) == ["spec.items[0].extra", "spec.zap", "top"]
    assert obj == {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                   "spec": {"free": {"any": {"thing": 1}}, "items": [{"name": "n"}]}}


def _crd(**spec) -> dict:
    base = {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    return {"metadata": {"name": "widgets.example.com"}, "spec": dict(base, **spec)}


def crd_messages(crd: dict) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate_crd(crd)]


def test_a_crd_is_named_plural_dot_group_with_one_storage_version():
    assert crd_messages(_crd()) == []
    bad = _crd(group="example")
    assert crd_messages(bad) == [
        'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
        'spec.group: Invalid value: "example": should be a domain with at least one dot']
    two = _crd(versions=[{"name": v, "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}} for v in ("v1", "v2")])
    assert crd_messages(two) == ['spec.versions: Invalid value: ["v1","v2"]: must have exactly one version marked '
                                 'as storage version']


def test_a_crd_schema_must_be_structural_and_its_rules_must_compile():
    crd = _crd(versions=[{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}},
        "x-kubernetes-validations": [{"rule": "self.a >"}]}}}])
    found = crd_messages(crd)
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for " \
           "specified object fields" in found
    assert any(m.startswith("spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule: Invalid "
                            "value") and "compilation failed" in m for m in found)


def test_webhook_conversion_is_refused_rather_than_served_unconverted():
    assert crd_messages(_crd(conversion={"strategy": "Webhook"})) == [
        'spec.conversion.strategy: Unsupported value: "Webhook": supported values: "None"']


def test_cel_python_is_imported_only_for_a_rule():
    # ~7 MB of every API server's memory (celpy, lark, pendulum) for clusters without CEL rules.
    code = ("import sys, kfab.controlplane.server\n"
            "assert 'celpy' not in sys.modules, 'imported with the server'\n"
            "from kfab.objects import crd_cel\n"
            "assert crd_cel.compile_error('self.a > 1') is None and 'celpy' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
