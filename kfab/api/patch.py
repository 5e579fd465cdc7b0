"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

`apply_patch` only computes the patched object. The caller (the API core) still checks that the patch did
not change `metadata.name`/`metadata.namespace` (kube-apiserver answers 400/422 for that), honours
`metadata.resourceVersion` as a precondition, and runs admission on the result.
Server-side apply (`application/apply-patch+yaml`) is `kfab.api.apply.server_side_apply`.
"""

from __future__ import annotations

import copy
import json

import jsonpatch
import jsonpointer

from kfab.objects.errors import APIError, bad_request, unsupported_media_type
from kfab.api.patch_schema import Field
from kfab.api.strategic_merge import PatchError, strategic_merge
from kfab.objects.registry import ResourceType

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


def media_type(content_type: str | None) -> str:
    """`application/merge-patch+json; charset=utf-8` -> `application/merge-patch+json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def apply_patch(rt: ResourceType, original: dict, content_type: str, body: bytes) -> dict:
    """The object `original` becomes after the PATCH body; `original` itself is not modified.

    Raises APIError: 400 malformed body, 415 unknown content type, 422 for a JSON patch whose `test`
    fails or whose path does not exist, or a patch that would turn the object into another kind.
    """
    kind = media_type(content_type)
    if kind == STRATEGIC_MERGE_PATCH and rt.custom is not None:
        # Custom resources have no Go types carrying patch strategies: kube-apiserver refuses this patch type.
        raise unsupported_media_type((JSON_PATCH, MERGE_PATCH, APPLY_PATCH))
    if kind == JSON_PATCH:
        patched = _json_patch(original, _decode(body, "JSON patch"))
    elif kind == MERGE_PATCH:
        patched = merge_patch(original, _decode(body, "JSON merge patch"))
    elif kind == STRATEGIC_MERGE_PATCH:
        patch = _decode(body, "strategic merge patch")
        if not isinstance(patch, dict):
            raise bad_request("strategic merge patch: the body must be a JSON object, "
                              f"got {type(patch).__name__}")
        try:
            patched = strategic_merge(original, patch, Field.for_kind(rt))
        except PatchError as e:
            raise APIError(e.code, "BadRequest" if e.code == 400 else "Invalid", str(e)) from None
    elif kind == APPLY_PATCH:
        raise bad_request("apply patches are handled by server-side apply, not apply_patch")
    else:
        raise unsupported_media_type(content_type)
    return _same_kind(rt, original, patched)


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, `null` deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _json_patch(original: dict, operations) -> dict:
    if not isinstance(operations, list):
        raise bad_request("JSON patch: the body must be a JSON array of operations, "
                          f"got {type(operations).__name__}")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise bad_request(f"JSON patch: operation {i} must be an object with string \"op\" and \"path\"")
    try:
        patch = jsonpatch.JsonPatch(operations)
        return patch.apply(copy.deepcopy(original))
    except jsonpatch.JsonPatchTestFailed as e:
        raise APIError(422, "Invalid", f"JSON patch test operation failed: {e}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as e:
        raise APIError(422, "Invalid", f"JSON patch cannot be applied: {e}") from None
    except jsonpatch.InvalidJsonPatch as e:
        raise bad_request(f"JSON patch is malformed: {e}") from None


def _decode(body: bytes, what: str):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"{what}: the body is not valid JSON: {e}") from None


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
            raise bad_request(f"a patch may not change {field} of a {rt.kind} (from {expected!r} to {value!r})")
    return patched
