"""Swagger 2.0 JSON -> the gnostic `openapi.v2.Document` protobuf that kubectl asks /openapi/v2 for.

client-go requests `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and only parses protobuf
(kubectl uses it for `explain --output plaintext-openapiv2` and for client-side validation when a server
does not validate fields itself). The message layout is google/gnostic openapiv2/OpenAPIv2.proto; vendor
extensions and enum values travel as YAML text (`Any.yaml`), as gnostic stores them. Only the parts of
Swagger 2.0 kfab's documents use are mapped.
"""

from __future__ import annotations

import json
import struct

# client-go asks with `...spec.v2@v1.0+protobuf`; a response must carry the spelling Go's mime parser accepts.
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


# --- wire format ---------------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement varints
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _bytes(field: int, data: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(data)) + data


def _string(field: int, value: str | None) -> bytes:
    return _bytes(field, value.encode()) if value else b""  # proto3: empty means absent


def _strings(field: int, values) -> bytes:
    return b"".join(_bytes(field, v.encode()) for v in values or [])


def _bool(field: int, value) -> bytes:
    return _tag(field, 0) + b"\x01" if value else b""


def _int(field: int, value) -> bytes:
    return _tag(field, 0) + _varint(int(value)) if value else b""


def _double(field: int, value) -> bytes:
    return _tag(field, 1) + struct.pack("<d", float(value)) if value else b""


def _message(field: int, data: bytes | None) -> bytes:
    return _bytes(field, data) if data is not None else b""


# --- gnostic messages ----------------------------------------------------------------------------------------

def _any(value) -> bytes:
    """openapi.v2.Any {google.protobuf.Any value = 1; string yaml = 2;}: JSON text is valid YAML."""
    return _string(2, json.dumps(value, sort_keys=True))


def _named(field: int, name: str, value: bytes) -> bytes:
    return _bytes(field, _string(1, name) + _bytes(2, value))


def _extensions(field: int, obj: dict) -> bytes:
    return b"".join(_named(field, k, _any(v)) for k, v in obj.items() if k.startswith("x-"))


def schema(s: dict) -> bytes:
    """openapi.v2.Schema."""
    out = [_string(1, s.get("$ref")), _string(2, s.get("format")), _string(3, s.get("title")),
           _string(4, s.get("description"))]
    if "default" in s:
        out.append(_message(5, _any(s["default"])))
    out += [_double(6, s.get("multipleOf")), _double(7, s.get("maximum")), _bool(8, s.get("exclusiveMaximum")),
            _double(9, s.get("minimum")), _bool(10, s.get("exclusiveMinimum")), _int(11, s.get("maxLength")),
            _int(12, s.get("minLength")), _string(13, s.get("pattern")), _int(14, s.get("maxItems")),
            _int(15, s.get("minItems")), _bool(16, s.get("uniqueItems")), _int(17, s.get("maxProperties")),
            _int(18, s.get("minProperties")), _strings(19, s.get("required"))]
    out += [_message(20, _any(v)) for v in s.get("enum") or []]
    extra = s.get("additionalProperties")
    if isinstance(extra, bool):
        out.append(_message(21, _bool(2, extra) or _tag(2, 0) + b"\x00"))
    elif isinstance(extra, dict):
        out.append(_message(21, _message(1, schema(extra))))
    if s.get("type"):
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(_message(22, _strings(1, types)))
    if "items" in s:
        items = s["items"] if isinstance(s["items"], list) else [s["items"]]
        out.append(_message(23, b"".join(_message(1, schema(i)) for i in items)))
    out += [_message(24, schema(sub)) for sub in s.get("allOf") or []]
    if s.get("properties"):
        out.append(_message(25, b"".join(_named(1, k, schema(v)) for k, v in s["properties"].items())))
    out += [_string(26, s.get("discriminator")), _bool(27, s.get("readOnly")), _extensions(31, s)]
    return b"".join(out)


def _parameter(p: dict) -> bytes:
    """openapi.v2.ParametersItem{parameter: Parameter{body_parameter | non_body_parameter}}."""
    if p.get("in") == "body":
        body = (_string(1, p.get("description")) + _string(2, p.get("name")) + _string(3, "body")
                + _bool(4, p.get("required")) + _message(5, schema(p.get("schema") or {})) + _extensions(6, p))
        return _message(1, _message(1, body))
    # Query and path sub-schemas share their first fields; `type` is 6 for query, 5 for path parameters.
    common = (_bool(1, p.get("required")) + _string(2, p.get("in")) + _string(3, p.get("description"))
              + _string(4, p.get("name")))
    if p.get("in") == "path":
        sub = common + _string(5, p.get("type")) + _string(6, p.get("format")) + _bool(19, p.get("uniqueItems"))
        non_body = _message(4, sub)
    else:
        sub = common + _string(6, p.get("type")) + _string(7, p.get("format")) + _bool(20, p.get("uniqueItems"))
        non_body = _message(3, sub)
    return _message(1, _message(2, non_body))


def _operation(op: dict) -> bytes:
    responses = b"".join(
        _named(1, code, _message(1, _string(1, r.get("description"))
                                 + (_message(2, _message(1, schema(r["schema"]))) if r.get("schema") else b"")))
        for code, r in (op.get("responses") or {}).items())
    return b"".join([
        _strings(1, op.get("tags")), _string(2, op.get("summary")), _string(3, op.get("description")),
        _string(5, op.get("operationId")), _strings(6, op.get("produces")), _strings(7, op.get("consumes")),
        b"".join(_message(8, _parameter(p)) for p in op.get("parameters") or []),
        _message(9, responses), _strings(10, op.get("schemes")), _bool(11, op.get("deprecated")),
        _extensions(13, op),
    ])


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: dict) -> bytes:
    out = [_message(field, _operation(item[method])) for method, field in _METHODS.items() if method in item]
    out += [_message(9, _parameter(p)) for p in item.get("parameters") or []]
    return b"".join(out) + _extensions(10, item)


def _security_definitions(defs: dict) -> bytes:
    items = []
    for name, d in defs.items():
        if d.get("type") == "apiKey":
            key = (_string(1, "apiKey") + _string(2, d.get("name")) + _string(3, d.get("in"))
                   + _string(4, d.get("description")))
            items.append(_named(1, name, _message(2, key)))
    return b"".join(items)


def document(doc: dict) -> bytes:
    """openapi.v2.Document for a Swagger 2.0 document (as built by kfab.api.openapi.build_v2)."""
    info = doc.get("info") or {}
    paths = b"".join(_named(2, path, _path_item(item)) for path, item in (doc.get("paths") or {}).items())
    definitions = b"".join(_named(1, name, schema(s)) for name, s in (doc.get("definitions") or {}).items())
    security = b"".join(
        _message(12, b"".join(_named(1, name, _strings(1, scopes)) for name, scopes in requirement.items()))
        for requirement in doc.get("security") or [])
    return b"".join([
        _string(1, doc.get("swagger")), _message(2, _string(1, info.get("title")) + _string(2, info.get("version"))),
        _message(8, paths), _message(9, definitions), security,
        _message(13, _security_definitions(doc.get("securityDefinitions") or {})), _extensions(16, doc),
    ])
