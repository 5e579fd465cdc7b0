"""CustomResourceDefinition validation, worded as apiextensions-apiserver's ValidateCustomResourceDefinition."""

from __future__ import annotations

import re

from kfab.objects import crd_cel
from kfab.objects.errors import Cause
from kfab.objects.validation.field import child, immutable, invalid, not_supported, required

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _d(value) -> dict:
    return value if isinstance(value, dict) else {}


def validate_crd(crd: dict) -> list[Cause]:
    causes: list[Cause] = []
    spec, meta = _d(crd.get("spec")), _d(crd.get("metadata"))
    group, names = spec.get("group") or "", _d(spec.get("names"))
    plural = names.get("plural") or ""
    if meta.get("name") and meta.get("name") != f"{plural}.{group}":
        causes.append(invalid("metadata.name", meta.get("name"), 'must be spec.names.plural+"."+spec.group'))
    if not group:
        causes.append(required("spec.group"))
    elif "." not in group:
        causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        causes.append(not_supported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"]) if spec.get("scope")
                      else required("spec.scope"))
    for key in ("plural", "singular"):
        value = names.get(key)
        if value and not _DNS_LABEL.match(value):
            causes.append(invalid(f"spec.names.{key}", value, "a lowercase RFC 1123 label must consist of lower "
                                  "case alphanumeric characters or '-', and must start and end with an "
                                  "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"))
    if not plural:
        causes.append(required("spec.names.plural"))
    for key in ("kind", "listKind"):
        value = names.get(key)
        if value and not _KIND.match(value):
            causes.append(invalid(f"spec.names.{key}", value, "may have mixed case, but should otherwise match: "
                                  "[a-z0-9]([-a-z0-9]*[a-z0-9])?"))
    if not names.get("kind"):
        causes.append(required("spec.names.kind"))
    causes += _versions(spec.get("versions"))
    strategy = _d(spec.get("conversion")).get("strategy")
    if strategy not in (None, "None"):
        # kfab runs no conversion webhooks: versions of one CRD must differ only in apiVersion
        causes.append(not_supported("spec.conversion.strategy", strategy, ["None"]))
    return causes


def _versions(versions) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [invalid("spec.versions", versions or [], "must have exactly one version marked as storage version")]
    causes: list[Cause] = []
    seen = set()
    for i, version in enumerate(versions):
        version, path = _d(version), f"spec.versions[{i}]"
        name = version.get("name") or ""
        if not name:
            causes.append(required(f"{path}.name"))
        elif name in seen:
            causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(name)
        schema = _d(_d(version.get("schema")).get("openAPIV3Schema"))
        if version.get("served") and not schema:
            causes.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        elif schema:
            root = f"{path}.schema.openAPIV3Schema"
            if schema.get("type") != "object":
                causes.append(required(f"{root}.type", "must not be empty at the root") if not schema.get("type")
                              else invalid(f"{root}.type", schema["type"], "must be object at the root"))
            causes += _structural(schema, root, at_root=True)
    if sum(1 for v in versions if _d(v).get("storage")) != 1:
        causes.append(invalid("spec.versions", _storage_names(versions),
                              "must have exactly one version marked as storage version"))
    return causes


def _storage_names(versions: list) -> list:
    return [_d(v).get("name") for v in versions if _d(v).get("storage")]


def _structural(schema: dict, path: str, at_root: bool = False) -> list[Cause]:
    """Every specified field has a type (a structural schema), and its CEL rules compile."""
    causes: list[Cause] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or ()):
        error = crd_cel.compile_error(_d(rule).get("rule") or "")
        if error:
            causes.append(invalid(f"{path}.x-kubernetes-validations[{i}].rule", _d(rule).get("rule"),
                                  f"compilation failed: {error}"))
    for name, prop in _d(schema.get("properties")).items():
        prop, where = _d(prop), f"{path}.properties[{name}]"
        if at_root and name == "metadata":
            continue
        if not prop.get("type") and not prop.get("x-kubernetes-int-or-string") and \
                not prop.get("x-kubernetes-preserve-unknown-fields"):
            causes.append(required(f"{where}.type", "must not be empty for specified object fields"))
        causes += _structural(prop, where)
    if isinstance(schema.get("items"), dict):
        causes += _structural(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        causes += _structural(schema["additionalProperties"], f"{path}.additionalProperties")
    return causes


def validate_crd_update(crd: dict, old: dict) -> list[Cause]:
    causes = []
    for key in ("scope", "group"):
        new_value, old_value = _d(crd.get("spec")).get(key), _d(old.get("spec")).get(key)
        if new_value != old_value:
            causes.append(immutable(child("spec", key), new_value))
    return causes
