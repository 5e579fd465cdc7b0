"""Request bodies decoded defensively: a nesting limit, and duplicate keys remembered for fieldValidation.

Go's decoder (and so kube-apiserver) refuses JSON nested deeper than 10000 levels with "exceeded max depth".
Python's decoders and everything after them (deepcopy, merges, validation) recurse, so kfab's limit is
lower: MAX_DEPTH levels, far beyond any Kubernetes object (a CRD schema reaches ~30), far below the
interpreter's recursion limit. The message is Go's.

Duplicate keys are legal JSON; kube-apiserver's strict decoder names each one by its path
(`duplicate field "spec.template.spec.containers[0].imagePullPolicy"`): a 400/422 under
fieldValidation=Strict, a warning under Warn, silence under Ignore. The last value wins, as in Go.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import orjson
import yaml

from kfab.objects.errors import APIError, bad_request

MAX_DEPTH = 200
EXCEEDED = "exceeded max depth"


@dataclass
class Decoded:
    value: object
    duplicates: list[str] = field(default_factory=list)  # paths of keys given more than once


# A number too long for orjson to give exactly what the json module gives (beyond 64 bits it gives a float).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def load_json(body: bytes | str) -> Decoded:
    """JSON text -> Decoded; ValueError (with Go's words for too deep) when it cannot be decoded."""
    value = _plain_json(body) if isinstance(body, bytes) else _NOT_PLAIN
    return Decoded(value) if value is not _NOT_PLAIN else _load_json_carefully(body)


_NOT_PLAIN = object()


def _outside_strings(text: bytes) -> bytes:
    """Valid JSON text without its strings. An escaped backslash or quote is dropped first (backslashes pair
    from the left, as the decoder reads them), so every quote left opens or closes a string."""
    plain = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(plain.split(b'"')[::2])


def _plain_json(body: bytes) -> object:
    """What the careful decoding below gives, decoded by orjson (~5x faster), for the body of almost every
    request: no deeper than MAX_DEPTH, no key given twice, no integer beyond 64 bits, nothing orjson refuses
    (NaN, a lone surrogate, a syntax error: the careful path has the words). Else _NOT_PLAIN."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_PLAIN
    bare = _outside_strings(body)  # where `:` ends a key and brackets open containers
    if bare.count(b"{") + bare.count(b"[") > MAX_DEPTH or _LONG_NUMBER.search(bare):
        return _NOT_PLAIN  # perhaps too deep (measured exactly there), or a number orjson would round
    if bare.count(b":") != _outside_strings(orjson.dumps(value)).count(b":"):
        return _NOT_PLAIN  # fewer keys decoded than written: one was given twice
    return value


def _load_json_carefully(body: bytes | str) -> Decoded:
    repeated: dict[int, list[str]] = {}

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            repeated[id(obj)] = [k for k, _ in pairs if k in seen or seen.add(k)]
        return obj

    if isinstance(body, bytes):
        try:  # JSON on the wire is UTF-8 (RFC 8259); json.loads would guess UTF-16/32 from the first bytes
            body = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"invalid UTF-8 at byte {e.start}") from None
    try:
        value = json.loads(body, object_pairs_hook=pairs_hook)
    except RecursionError:
        raise ValueError(EXCEEDED) from None
    return Decoded(value, _walk(value, repeated))


# libyaml's parser where PyYAML has it: the pure-Python one takes seconds on a few KB of nested brackets.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Brackets and braces outside quoted strings: how deep a YAML flow collection nests, counted before parsing.
_FLOW = re.compile(rb'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[\[\]{}]')


class _Loader(_SafeLoader):
    """SafeLoader that remembers repeated mapping keys instead of silently keeping the last one."""

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated: dict[int, list[str]] = {}

    def construct_remembering_map(self, node):
        data: dict = {}
        yield data
        # Keys as written, before `<<` merge keys are flattened in (a key may override a merged one).
        keys = [k.value for k, _ in node.value
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge"]
        data.update(self.construct_mapping(node))
        if len(set(keys)) != len(keys):
            seen: set = set()
            self.repeated[id(data)] = [k for k in keys if k in seen or seen.add(k)]


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_remembering_map)


def load_yaml_documents(body: bytes | str) -> list[Decoded]:
    """Every non-empty YAML document; yaml.YAMLError when malformed, ValueError when nested too deep."""
    _check_flow_depth(body.encode() if isinstance(body, str) else body)
    loader = _Loader(body)
    docs: list[Decoded] = []
    try:
        while loader.check_data():
            value = loader.get_data()
            if value is not None:
                docs.append(Decoded(value, _walk(value, loader.repeated)))
    except RecursionError:
        raise ValueError(f"yaml: {EXCEEDED}") from None
    finally:
        loader.dispose()
    return docs


def _check_flow_depth(body: bytes) -> None:
    depth = 0
    for m in _FLOW.finditer(body):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"yaml: {EXCEEDED}")
        elif token in (b"]", b"}"):
            depth = max(0, depth - 1)


def yaml_message(error: yaml.YAMLError) -> str:
    """A YAML error as go-yaml words it (`yaml: line 3: ...`), without PyYAML's Python-style quoting."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
    problem = re.sub(r"'([^']*)'", r'"\1"', str(problem))
    return f"yaml: line {mark.line + 1}: {problem}" if mark is not None else f"yaml: {problem}"


def _walk(value: object, repeated: dict[int, list[str]]) -> list[str]:
    """Check the depth without recursing; collect the paths of repeated keys (kube's spelling)."""
    duplicates: list[str] = []
    stack: list[tuple[object, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise ValueError(EXCEEDED)
            for key in repeated.get(id(node), ()):
                duplicates.append(f"{path}.{key}" if path else str(key))
            for key, child in reversed(node.items()):  # reversed: popped in document order
                if isinstance(child, (dict, list)):
                    stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise ValueError(EXCEEDED)
            for i, child in reversed(list(enumerate(node))):
                if isinstance(child, (dict, list)):
                    stack.append((child, f"{path}[{i}]", depth + 1))
    return list(dict.fromkeys(duplicates))


def json_type(value: object) -> str:
    """A decoded value's type in JSON's words, for messages (never a Python class name)."""
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number",
            type(None): "null"}.get(type(value), "value")


def quoted(value: object) -> str:
    """A value quoted as Go's %q does (double quotes), not as Python's repr."""
    return json.dumps(value if isinstance(value, str) else str(value))


def duplicate_field_messages(duplicates: list[str], prefix: str = "") -> list[str]:
    return [f'{prefix}duplicate field "{p}"' for p in duplicates]


def strict_object_errors(kind: str, version: str, decoded: Decoded, field_validation: str) -> list[str]:
    """A create/update body: 400 under Strict (as kube's strict decoder), else the warnings to send."""
    if field_validation == "Ignore" or not decoded.duplicates:
        return []
    messages = duplicate_field_messages(decoded.duplicates)
    if field_validation == "Strict":
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
                          + ", ".join(messages))
    return messages


def strict_patch_errors(decoded: Decoded, field_validation: str, patched: dict, json_patch: bool) -> list[str]:
    """A patch body: kube-apiserver's 422 on the `patch` field under Strict, else the warnings to send."""
    if field_validation == "Ignore" or not decoded.duplicates:
        return []
    messages = duplicate_field_messages(decoded.duplicates, "json patch " if json_patch else "")
    if field_validation == "Strict":
        shown = json.dumps(json.dumps(patched, separators=(",", ":")))
        raise APIError(422, "Invalid", f' "" is invalid: patch: Invalid value: {shown}: strict decoding error: '
                       + ", ".join(messages))
    return messages
