"""Field errors worded as k8s.io/apimachinery/pkg/util/validation/field words them.

A Cause's `message` is the error body without the field (`Invalid value: "x": detail`), exactly what
kube-apiserver puts in a Status cause; `field` is the JSON path (`spec.containers[0].image`).
"""

from __future__ import annotations

import json

from kfab.objects.errors import APIError, Cause


def path(*parts: str | int) -> str:
    """path("spec", "containers", 0, "name") -> "spec.containers[0].name"; a key with dots stays whole."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = part
    return out


def child(base: str, *parts: str | int) -> str:
    return path(base, *parts) if base else path(*parts)


def render(value: object) -> str:
    """A bad value as field.Error renders it: strings quoted (%q), numbers and bools bare, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    # Go marshals a map[string]string with sorted keys and a struct in field order (as sent, here).
    flat_map = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=flat_map)


def _body(kind: str, value: object = None, detail: str = "", show_value: bool = True) -> str:
    text = f"{kind}: {render(value)}" if show_value else kind
    return f"{text}: {detail}" if detail else text


def invalid(field: str, value: object, detail: str) -> Cause:
    return Cause(field, _body("Invalid value", value, detail), "FieldValueInvalid")


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, _body("Required value", detail=detail, show_value=False), "FieldValueRequired")


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, _body("Forbidden", detail=detail, show_value=False), "FieldValueForbidden")


def duplicate(field: str, value: object) -> Cause:
    return Cause(field, _body("Duplicate value", value), "FieldValueDuplicate")


def not_found(field: str, value: object) -> Cause:
    return Cause(field, _body("Not found", value), "FieldValueNotFound")


def not_supported(field: str, value: object, supported: list[str] | tuple[str, ...]) -> Cause:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in supported) if supported else ""
    return Cause(field, _body("Unsupported value", value, detail), "FieldValueNotSupported")


def too_long(field: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause(field, _body("Too long", detail=f"may not be more than {max_bytes} {unit}", show_value=False),
                 "FieldValueTooLong")


def immutable(field: str, value: object) -> Cause:
    return invalid(field, value, "field is immutable")


def nonnegative(field: str, value: object) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(field, value, "must be greater than or equal to 0")]
    return []


def dedupe(causes: list[Cause]) -> list[Cause]:
    seen, out = set(), []
    for cause in causes:
        key = (cause.field, cause.message)
        if key not in seen:
            seen.add(key)
            out.append(cause)
    return out


def invalid_error(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    """422 as errors.NewInvalid words it: `Deployment.apps "web" is invalid: <one error>` or `[e1, e2]`."""
    causes = dedupe(causes)
    qualified = f"{kind}.{group}" if group else kind
    texts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    detail = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return APIError(422, "Invalid", f'{qualified} "{name}" is invalid: {detail}', name=name,
                    group=group or None, kind=kind, causes=causes)
