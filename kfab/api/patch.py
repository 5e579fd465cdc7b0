"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

`apply_patch` only computes the patched object. The caller (the API core) still checks that the patch did
not change `metadata.name`/`metadata.namespace` (kube-apiserver answers 400/422 for that), honours
`metadata.resourceVersion` as a precondition, and runs admission on the result.
Server-side apply (`application/apply-patch+yaml`) is `kfab.api.apply.server_side_apply`.
"""

from __future__ import annotations

import json
import re

import jsonpatch
import jsonpointer

from kfab.objects import jsonwire
from kfab.api.decoding import Decoded, json_type, load_json, quoted
from kfab.objects.errors import APIError, bad_request, unsupported_media_type
from kfab.api.patch_schema import Field
from kfab.api.strategic_merge import PatchError, strategic_merge
from kfab.objects.registry import ResourceType

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# In kube-apiserver's order (its 415 lists them so).
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


def media_type(content_type: str | None) -> str:
    """`application/merge-patch+json; charset=utf-8` -> `application/merge-patch+json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_patch(content_type: str | None, body: bytes) -> Decoded:
    """The PATCH body of a supported patch type, decoded once (415 for another type, 400 when malformed)."""
    kind = media_type(content_type)
    if kind not in PATCH_TYPES:
        raise unsupported_media_type(PATCH_TYPES)
    what = {JSON_PATCH: "JSON patch", MERGE_PATCH: "JSON merge patch",
            STRATEGIC_MERGE_PATCH: "strategic merge patch"}.get(kind, "apply patch")
    try:
        return load_json(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"{what}: the body is not valid JSON: {e}") from None


def apply_patch(rt: ResourceType, original: dict, content_type: str, body: bytes) -> dict:
    """The object `original` becomes after the PATCH body; `original` itself is not modified.

    Raises APIError: 400 malformed body, 415 unknown content type, 422 for a JSON patch whose `test`
    fails or whose path does not exist, or a patch that would turn the object into another kind.
    """
    return apply_decoded_patch(rt, original, content_type, decode_patch(content_type, body).value)


def apply_decoded_patch(rt: ResourceType, original: dict, content_type: str, patch: object) -> dict:
    """apply_patch with a body decode_patch already decoded (a retried update decodes once)."""
    kind = media_type(content_type)
    if kind == STRATEGIC_MERGE_PATCH and rt.custom is not None:
        # Custom resources have no Go types carrying patch strategies: kube-apiserver refuses this patch type.
        raise unsupported_media_type((JSON_PATCH, MERGE_PATCH, APPLY_PATCH))
    if kind == JSON_PATCH:
        patched = _json_patch(original, patch)
    elif kind == MERGE_PATCH:
        patched = merge_patch(original, patch)
    elif kind == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("strategic merge patch: the body must be a JSON object, "
                              f"got {json_type(patch)}")
        try:
            patched = strategic_merge(original, patch, Field.for_kind(rt))
        except PatchError as e:
            raise APIError(e.code, "BadRequest" if e.code == 400 else "Invalid", str(e)) from None
    elif kind == APPLY_PATCH:
        raise bad_request("apply patches are handled by server-side apply, not apply_patch")
    else:
        raise unsupported_media_type(PATCH_TYPES)
    return _same_kind(rt, original, patched)


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, `null` deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return jsonwire.clone(patch)
    result = jsonwire.clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# kube-apiserver refuses longer JSON patches with 413 (maxJSONPatchOperations).
MAX_JSON_PATCH_OPERATIONS = 10000


def _json_patch(original: dict, operations) -> dict:
    if not isinstance(operations, list):
        raise bad_request("JSON patch: the body must be a JSON array of operations, "
                          f"got {json_type(operations)}")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise APIError(413, "RequestEntityTooLarge", f"The allowed maximum operations in a JSON patch is "
                       f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise bad_request(f"JSON patch: operation {i} must be an object with string \"op\" and \"path\"")
    for op in operations:
        if op["op"] not in ("add", "remove", "replace", "move", "copy", "test"):
            raise bad_request(f"Unexpected kind: {op['op']}")  # evanphx/json-patch's words
    doc = jsonwire.clone(original)
    # One operation at a time, so that a failure names its operation in evanphx/json-patch's words (kube's
    # library) rather than in the Python library's (which quotes Python types).
    for op in operations:
        name, path = op["op"], op["path"]
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc)
        except jsonpatch.JsonPatchTestFailed:
            raise APIError(422, "Invalid", f"testing value {path} failed: test failed") from None
        except jsonpatch.InvalidJsonPatch as e:
            raise bad_request(f"JSON patch is malformed: {_without_python_types(str(e))}") from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError,
                ValueError, AttributeError):
            where = op.get("from", path) if name in ("move", "copy") else path
            raise APIError(422, "Invalid", f"{name} operation does not apply: doc is missing path: "
                           f"{quoted(where)}: missing value") from None
    return doc


def _without_python_types(message: str) -> str:
    return re.sub(r"<class '(\w+)'>", lambda m: {"str": "string", "dict": "object", "list": "array",
                                                  "int": "number", "float": "number", "bool": "boolean",
                                                  "NoneType": "null"}.get(m.group(1), "value"), message)


def _same_kind(rt: ResourceType, original: dict, patched) -> dict:
    """A patch may drop apiVersion/kind (they come back) but may not turn the object into another kind."""
    if not isinstance(patched, dict):
        raise bad_request(f"the patched {rt.kind} is not a JSON object")
    for field, expected in (("apiVersion", original.get("apiVersion", rt.api_version)),
                            ("kind", original.get("kind", rt.kind))):
        value = patched.get(field)
        if value is None:
            patched[field] = expected
        elif value != expected:
            shown = value if isinstance(value, str) else json.dumps(value)  # JSON, never a Python repr
            raise bad_request(f"a patch may not change {field} of a {rt.kind} "
                              f"(from {quoted(expected)} to {quoted(shown)})")
    return patched
