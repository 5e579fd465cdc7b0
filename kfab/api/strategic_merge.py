"""Strategic merge patch, applied the way kube-apiserver applies it.

Follows k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap / mergeSlice and their helpers) so that
`kubectl patch` and client-side `kubectl apply` get the results they get from a real cluster:

- maps merge key by key; `null` deletes a key;
- lists whose field has `x-kubernetes-patch-strategy: merge` merge by `x-kubernetes-patch-merge-key`
  (containers/env/volumes by name, ports by containerPort ...); lists of scalars with that strategy
  (finalizers) are union-merged; every other list is replaced;
- directives: `$patch: replace|delete` on a map or a list element, `$deleteFromPrimitiveList/<field>`,
  `$setElementOrder/<field>` (the order kubectl apply wants), `$retainKeys` (clear keys not listed).
  `$patch: merge` is refused, as kube-apiserver refuses it.
- Order of a merged list: items named in the patch in the patch's order, interleaved with the items only
  the server has in their live order (apimachinery's normalizeElementOrder / mergeSortedSlice).

Values that are added wholesale (no counterpart in the original) lose their directives and nulls, as
apimachinery's removeDirectives/discardNullValuesFromPatch do.
"""

from __future__ import annotations


from kfab.objects import jsonwire
from kfab.api.decoding import quoted
from kfab.api.patch_schema import Field

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"


class PatchError(Exception):
    """A patch that cannot be applied; `code` is the HTTP status kube-apiserver answers with."""

    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code


def strategic_merge(original: dict, patch: dict, field: Field) -> dict:
    """Return `original` with `patch` merged in; neither argument is modified."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(jsonwire.clone(original), jsonwire.clone(patch), field)


# -- Go's fmt, for the messages upstream formats with %s and %v (no Python repr reaches a client) ---------

def _go_v(value) -> str:
    """A decoded JSON value as Go's %v prints it: map[k:v] with sorted keys, [a b], <nil>, true."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _go_s(value) -> str:
    """%s: a string as it is; anything else as Go marks a wrong verb, e.g. %!s(<nil>), %!s(float64=1)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    kind = "bool" if isinstance(value, bool) else "float64" if isinstance(value, (int, float)) else (
        "map[string]interface {}" if isinstance(value, dict) else "[]interface {}")
    return f"%!s({kind}={_go_v(value)})"


# -- maps --------------------------------------------------------------------------------------

def _merge_map(original: dict | None, patch: dict, field: Field) -> dict:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _added_value(patch)[0]
        if directive == "delete":
            return {}
        raise PatchError(f"unknown patch type: {_go_s(directive)} in map: {_go_v(patch)}")
    if original is None:
        original = {}

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, field)

    for key, value in patch.items():
        delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            key = _directive_target(key, DELETE_FROM_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key)
        if key not in original or _shape(current) != _shape(value):
            if not delete_list:
                _set_added(original, key, value)
            continue
        sub = field.field(key)
        if isinstance(value, dict):
            original[key] = value if sub.replace_map else _merge_map(current, value, sub)
        elif isinstance(value, list):
            if sub.merge_list:
                original[key] = _merge_list(current, value, sub.items(), sub.merge_key or "", delete_list)
            elif not delete_list:
                _set_added(original, key, value)
        else:
            original[key] = value
    return original


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """`$retainKeys: [a, b]` clears every other key of the original (e.g. strategy.rollingUpdate)."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise PatchError("invalid patch format of retainKeys: $retainKeys must be a list")
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in retain:
            raise PatchError(f"invalid patch format of retainKeys: {quoted(key)} is in the patch "
                             f"but not in $retainKeys")
    for key in [k for k in original if k not in retain]:
        del original[key]


def _merge_ordered_lists(original: dict, patch: dict, field: Field) -> None:
    """Handle `$setElementOrder/<list>`: merge that list now and put its items in the wanted order."""
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise PatchError("invalid patch format of setElementOrder list: the value must be a list")
        key = _directive_target(directive_key, SET_ELEMENT_ORDER)
        in_original, in_patch = key in original, key in patch
        live, wanted = original.get(key), patch.get(key)
        if (in_original and not isinstance(live, list)) or (in_patch and not isinstance(wanted, list)):
            raise PatchError(f"invalid patch format of setElementOrder list: {key} is not a list")
        sub = field.field(key)
        merge_key = sub.merge_key or ""
        _check_order_matches_patch(wanted or [], order, merge_key)
        if in_original and in_patch:
            if sub.merge_list:
                merged = _merge_list(live, wanted, sub.items(), merge_key, False)
            else:
                merged = _added_value(wanted)[0]
        elif in_patch:
            merged = _added_value(wanted)[0]
        elif in_original:
            merged = live
        else:
            continue
        kind = _element_kind(live or [], wanted or [], merged)
        if kind == "map" and not merge_key:
            original[key] = merged
        else:
            named, server_only = _partition(merged, order, merge_key if kind == "map" else "")
            original[key] = _normalize_order(named, server_only, order, live or [], merge_key if kind == "map" else "")
        patch.pop(key, None)


def _check_order_matches_patch(patch_list: list, order: list, merge_key: str) -> None:
    """The patch list must name its items in the same relative order as $setElementOrder does."""
    if not patch_list or not order:
        return
    items = [p for p in patch_list if not (isinstance(p, dict) and DIRECTIVE in p)]
    i = j = 0
    while i < len(items) and j < len(order):
        if _same(_key_of(items[i], merge_key), _key_of(order[j], merge_key)):
            i += 1
        j += 1
    if i < len(items):
        raise PatchError(f"the order in patch list:\n{patch_list}\n doesn't match {SET_ELEMENT_ORDER} list:\n{order}")


# -- lists -------------------------------------------------------------------------------------

def _merge_list(original: list, patch: list, item: Field, merge_key: str, delete_list: bool) -> list:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if delete_list:
            return [v for v in original if not any(_same(v, d) for d in patch)]
        merged = _dedupe(original + patch)
        merge_key = ""
    else:
        if not merge_key:
            raise PatchError("cannot merge lists without merge key")
        original, patch = _apply_list_directives(original, patch, merge_key)
        merged = _merge_list_items(original, patch, merge_key, item)
    named, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(named, server_only, patch, original, merge_key)


def _apply_list_directives(original: list, patch: list, merge_key: str) -> tuple[list, list]:
    """`{name: x, $patch: delete}` removes item x; `{$patch: replace}` makes the patch list the whole list."""
    plain, replace = [], False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise PatchError(f"map: {item} does not contain declared merge key: {merge_key}")
            original = [o for o in original if not (isinstance(o, dict) and merge_key in o
                                                    and _same(o[merge_key], item[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {_go_s(directive)} in map: {_go_v(item)}")
    if replace:
        return [_added_value(p)[0] for p in plain], []
    return original, plain


def _merge_list_items(original: list, patch: list, merge_key: str, item: Field) -> list:
    original = list(original)  # the caller still needs the live order, without appended items
    for element in patch:
        if merge_key not in element:
            raise PatchError(f"map: {element} does not contain declared merge key: {merge_key}")
        index = _find(original, merge_key, element[merge_key])
        if index is None:
            value, keep = _added_value(element)
            if keep:
                original.append(value)
        else:
            original[index] = _merge_map(original[index], element, item)
    return original


def _partition(merged: list, named_by: list, merge_key: str) -> tuple[list, list]:
    """Split items into those the patch (or order list) names and those only the server has."""
    keys = [_key_of(n, merge_key) for n in named_by]
    named, server_only = [], []
    for value in merged:
        if merge_key and not (isinstance(value, dict) and merge_key in value):
            raise PatchError(f"map: {value} does not contain declared merge key: {merge_key}")
        (named if any(_same(_key_of(value, merge_key), k) for k in keys) else server_only).append(value)
    return named, server_only


def _normalize_order(named: list, server_only: list, named_order: list, server_order: list, merge_key: str) -> list:
    named = _sort_by(named, named_order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    return _merge_sorted(server_only, named, server_order, merge_key)


def _merge_sorted(left: list, right: list, server_order: list, merge_key: str) -> list:
    """apimachinery's mergeSortedSlice: keep both relative orders; a server-only item goes before a patch
    item only when both are in the live list and it came first there."""
    out, i, j = [], 0, 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _sort_by(items: list, order: list, merge_key: str) -> list:
    def position(value):
        index = _index(order, value, merge_key)
        return index if index >= 0 else len(order)
    return sorted(items, key=position)


# -- small helpers -----------------------------------------------------------------------------

def _shape(value) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _element_kind(*lists: list) -> str:
    kinds = {_shape(v) for values in lists for v in values}
    if "list" in kinds:
        raise PatchError("lists of lists are not supported", code=422)
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {list(lists)}")
    return kinds.pop() if kinds else "scalar"


def _same(a, b) -> bool:
    # Go compares decoded JSON by type and value: true != 1, "80" != 80, but 80 == 80.0 (both float64).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) != isinstance(b, str):
        return False
    return a == b


def _key_of(value, merge_key: str):
    if merge_key:
        return value.get(merge_key) if isinstance(value, dict) else None
    return value


def _index(order: list, value, merge_key: str) -> int:
    key = _key_of(value, merge_key)
    for i, candidate in enumerate(order):
        if _same(_key_of(candidate, merge_key), key):
            return i
    return -1


def _find(items: list, merge_key: str, key) -> int | None:
    for i, candidate in enumerate(items):
        if not isinstance(candidate, dict):
            raise PatchError(f"value for key {i} is not a map")
        if merge_key in candidate and _same(candidate[merge_key], key):
            return i
    return None


def _dedupe(values: list) -> list:
    out: list = []
    for v in values:
        if not any(_same(v, o) for o in out):
            out.append(v)
    return out


def _directive_target(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        what = "primitive list" if prefix == DELETE_FROM_PRIMITIVE_LIST else "setElementOrder list"
        raise PatchError(f"invalid patch format of {what}: {quoted(key)}")
    return rest


def _set_added(original: dict, key: str, value) -> None:
    value, keep = _added_value(value)
    if keep:
        original[key] = value
    else:
        original.pop(key, None)


def _added_value(value):
    """A patch value taken as is: drop nulls inside maps and any directives. Returns (value, keep)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            if v is None or k == RETAIN_KEYS or k.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
                continue
            v, keep = _added_value(v)
            if keep:
                out[k] = v
        return out, True
    if isinstance(value, list):
        out_list = []
        for v in value:
            v, keep = _added_value(v)
            if keep:
                out_list.append(v)
        return out_list, True
    return value, True
