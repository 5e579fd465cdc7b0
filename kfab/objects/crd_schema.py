"""A custom resource against its CRD's structural schema (openAPIV3Schema): validation, defaulting, pruning.

kube-apiserver validates custom resources with kube-openapi's fork of go-openapi/validate and words the
errors the way apiextensions-apiserver's validation.ConvertToK8sErrors maps them onto field errors:

    spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"
    spec.size: Unsupported value: "huge": supported values: "small", "large"
    spec.name: Too long: may not be more than 8 bytes
    spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1

Built-in kinds are checked against Go struct types (kfab.objects.schema); a CRD's schema is JSON Schema with
Kubernetes extensions, so it gets its own walker. Every function takes the raw schema dict (as stored in the
CRD) and a value, and works in one pass.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import re
import uuid

from kfab.objects import crd_cel
from kfab.objects.errors import Cause
from kfab.objects.validation.field import invalid, not_supported, render, required, too_long

TYPE_INVALID = "FieldValueTypeInvalid"
_ROOT_META = ("apiVersion", "kind", "metadata")


def _data_type(value) -> str:
    """The JSON type go-openapi names for a decoded value (integral numbers are integers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(schema_type: str, value) -> bool:
    actual = _data_type(value)
    if schema_type == "number":
        return actual in ("number", "integer")
    return actual == schema_type


def _path(base: str, key) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def _type_invalid(path: str, value, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {render(value)}: {detail}", TYPE_INVALID)


# --- formats (the ones kube-openapi's strfmt registry knows and CRD authors use) -----------------------

_FORMATS = {
    "date-time": lambda v: (_parses(lambda: datetime.datetime.fromisoformat(v.replace("Z", "+00:00")))
                            and "T" in v.upper()),
    "date": lambda v: bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)) and _parses(lambda: datetime.date.fromisoformat(v)),
    "email": lambda v: bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v)),
    "hostname": lambda v: bool(re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                            r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", v)),
    "ipv4": lambda v: _parses(lambda: ipaddress.IPv4Address(v)),
    "ipv6": lambda v: _parses(lambda: ipaddress.IPv6Address(v)),
    "cidr": lambda v: _parses(lambda: ipaddress.ip_network(v, strict=False)) and "/" in v,
    "uuid": lambda v: _parses(lambda: uuid.UUID(v)),
    "uri": lambda v: bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", v)),
    "byte": lambda v: _parses(lambda: base64.b64decode(v, validate=True)),
    "int-or-string": lambda v: True,
}


def _parses(parse) -> bool:
    try:
        parse()
    except (ValueError, binascii.Error, TypeError):
        return False
    return True


# --- validation ---------------------------------------------------------------------------------------

NO_OLD = crd_cel.NO_OLD


def validate(schema: dict, obj: dict, old: dict | None = None) -> list[Cause]:
    """Every field error of `obj` against the CRD version's schema (root: apiVersion/kind/metadata are the API
    server's to check, as in kube-apiserver). `old` is the stored object on an update: CEL transition rules
    (`oldSelf`) compare each field with its old value where it had one."""
    causes: list[Cause] = []
    _object(schema, obj, "", causes, root=True, old=old if old is not None else NO_OLD)
    return causes


def _value(schema: dict, value, path: str, causes: list[Cause], old=NO_OLD) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            causes.append(_type_invalid(path, "null", f"{path} in body must be of type {schema['type']}: \"null\""))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if _data_type(value) not in ("integer", "string"):
            causes.append(_type_invalid(path, _data_type(value), f"{path} in body must be of type integer,string: "
                                                                 f'"{_data_type(value)}"'))
            return
    elif schema.get("type") and not _type_ok(schema["type"], value):
        actual = _data_type(value)
        causes.append(_type_invalid(path, actual, f'{path} in body must be of type {schema["type"]}: "{actual}"'))
        return
    if "enum" in schema and value not in schema["enum"]:
        causes.append(not_supported(path, value, [_enum_text(e) for e in schema["enum"]]))
    if isinstance(value, str):
        _string(schema, value, path, causes)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _number(schema, value, path, causes)
    elif isinstance(value, list):
        _array(schema, value, path, causes)
    elif isinstance(value, dict):
        _object(schema, value, path, causes, old=old)
    _cel_rules(schema, value, path, causes, old)


def _enum_text(value) -> str:
    # field.NotSupported prints each supported value with %q: strings quoted, others as Go prints them
    return value if isinstance(value, str) else render(value)


def _string(schema: dict, value: str, path: str, causes: list[Cause]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        causes.append(too_long(path, schema["maxLength"]))
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long"))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        causes.append(invalid(path, value, f"{path} in body should match '{schema['pattern']}'"))
    fmt = schema.get("format")
    check = _FORMATS.get(fmt or "")
    if check is not None and not check(value):
        causes.append(invalid(path, value, f'{path} in body must be of type {fmt}: "{value}"'))


def _number(schema: dict, value, path: str, causes: list[Cause]) -> None:
    shown = int(value) if isinstance(value, float) and value.is_integer() else value
    if "maximum" in schema:
        limit = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= limit:
            causes.append(invalid(path, shown, f"{path} in body should be less than {_num(limit)}"))
        elif value > limit:
            causes.append(invalid(path, shown, f"{path} in body should be less than or equal to {_num(limit)}"))
    if "minimum" in schema:
        limit = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= limit:
            causes.append(invalid(path, shown, f"{path} in body should be greater than {_num(limit)}"))
        elif value < limit:
            causes.append(invalid(path, shown, f"{path} in body should be greater than or equal to {_num(limit)}"))
    if schema.get("multipleOf") and (value / schema["multipleOf"]) % 1:
        causes.append(invalid(path, shown, f"{path} in body should be a multiple of {_num(schema['multipleOf'])}"))


def _num(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _array(schema: dict, value: list, path: str, causes: list[Cause]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(Cause(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                            "FieldValueTooMany"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(invalid(path, value, f"{path} in body should have at least {schema['minItems']} items"))
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen = []
        for i, item in enumerate(value):
            if item in seen:
                causes.append(Cause(_path(path, i), f"Duplicate value: {render(item)}", "FieldValueDuplicate"))
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _value(items, item, _path(path, i), causes)


def _object(schema: dict, value: dict, path: str, causes: list[Cause], root: bool = False, old=NO_OLD) -> None:
    props = schema.get("properties") or {}
    for key in schema.get("required") or ():
        if key not in value and not (root and key in _ROOT_META):
            causes.append(required(_path(path, key)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(Cause(path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                            "FieldValueTooMany"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(invalid(path, value, f"{path} in body should have at least {schema['minProperties']} "
                                           "properties"))
    if schema.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                causes.append(required(_path(path, key), "must not be empty"))
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in _ROOT_META:
            continue
        child = props.get(key)
        if child is None and isinstance(extra, dict):
            child = extra
        if child is not None:
            _value(child, item, _path(path, key), causes, old.get(key, NO_OLD) if isinstance(old, dict) else NO_OLD)
    if root:
        _cel_rules(schema, value, path, causes, old)


def _cel_rules(schema: dict, value, path: str, causes: list[Cause], old=NO_OLD) -> None:
    if schema.get("x-kubernetes-validations"):
        causes.extend(crd_cel.check(schema, value, path, old))


# --- pruning and defaulting -----------------------------------------------------------------------------

def prune(schema: dict, obj: dict) -> list[str]:
    """Drop every field the schema does not specify (unless x-kubernetes-preserve-unknown-fields); return their
    paths as strict decoding names them (`spec.foo`)."""
    dropped: list[str] = []
    _prune_object(schema, obj, "", dropped, root=True)
    return dropped


def _prune_value(schema: dict, value, path: str, dropped: list[str]) -> None:
    if isinstance(value, dict):
        _prune_object(schema, value, path, dropped)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune_value(schema["items"], item, _path(path, i), dropped)


def _prune_object(schema: dict, value: dict, path: str, dropped: list[str], root: bool = False) -> None:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
    embedded = schema.get("x-kubernetes-embedded-resource")
    for key in list(value):
        if (root or embedded) and key in _ROOT_META:
            continue
        child = props.get(key)
        if child is None and isinstance(extra, dict):
            child = extra
        if child is None:
            if not keep_unknown:
                dropped.append(_path(path, key))
                del value[key]
            continue
        _prune_value(child, value[key], _path(path, key), dropped)


def default(schema: dict, obj: dict) -> None:
    """Fill `default` values of absent fields (and of nulls in non-nullable fields), as the apiserver does on
    create, update and read."""
    _default_value(schema, obj)


def _default_value(schema: dict, value) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, child in props.items():
            if "default" in child and (key not in value or (value[key] is None and not child.get("nullable"))):
                value[key] = copy.deepcopy(child["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = props.get(key) or (extra if isinstance(extra, dict) else None)
            if child is not None:
                _default_value(child, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_value(schema["items"], item)
