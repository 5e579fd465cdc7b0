"""Sets of field paths, as server-side apply tracks them in `metadata.managedFields` (FieldsV1).

A path is a tuple of elements spelled the way FieldsV1 spells them:
`f:<field>` (struct field or map key), `k:{"name":"app"}` (item of a list keyed by
`x-kubernetes-list-map-keys`), `v:"value"` (item of a set list), `i:<n>` (list index).
The membership rules follow sigs.k8s.io/structured-merge-diff (ToFieldSet / Compare), with the schema
markers read from `kfab.objects.schema_defs` through `Field`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field as dc_field

from kfab.api.patch_schema import Field

Path = tuple[str, ...]

# Keys of associative lists that kube-apiserver defaults before it computes field sets
# (ports are keyed by [containerPort, protocol] and protocol defaults to TCP).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- FieldsV1 encoding -------------------------------------------------------------------------

def to_fields_v1(paths: set[Path]) -> dict:
    """{("f:spec", "f:replicas")} -> {"f:spec": {"f:replicas": {}}}; a member with children gets ".": {}."""
    tree: dict = {}
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _finish(tree)


def _finish(node: dict) -> dict:
    children = {k: _finish(v) for k, v in sorted(node.items()) if k != "."}
    if "." in node and children:
        return {".": {}, **children}
    return children


def from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, sub in (tree or {}).items():
        if element == ".":
            paths.add(prefix)
            continue
        path = prefix + (element,)
        if not sub:
            paths.add(path)
        else:
            paths |= from_fields_v1(sub, path)
    return paths


def display(path: Path) -> str:
    """The way kube-apiserver prints a path in conflict messages: .spec.containers[name="app"].image"""
    out = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            key = json.loads(rest)
            out.append("[" + ",".join(f"{k}={_json(v)}" for k, v in sorted(key.items())) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


# -- reading paths out of objects --------------------------------------------------------------

def _is_leaf(value, field: Field) -> bool:
    if isinstance(value, dict):
        return field.atomic_map
    if isinstance(value, list):
        return field.list_type not in ("map", "set") or not field.known
    return True


def item_element(item, field: Field) -> str:
    """The path element of one item of a granular list (`field` is the list's Field)."""
    if field.list_type == "set":
        return "v:" + _json(item)
    keys = field.list_keys or ((field.merge_key,) if field.merge_key else ())
    if not isinstance(item, dict):
        return "v:" + _json(item)
    key = {}
    for name in keys:
        if name in item:
            key[name] = item[name]
        elif name in _KEY_DEFAULTS:
            key[name] = _KEY_DEFAULTS[name]
    return "k:" + _json(key)


def items_by_element(items: list, field: Field) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        out.setdefault(item_element(item, field), item)
    return out


def fields_of(value, field: Field, prefix: Path = ()) -> set[Path]:
    """The paths a value sets (structured-merge-diff's ToFieldSet): leaves, map entries, list items,
    and struct fields holding null or an empty map. Intermediate struct fields are not members."""
    paths: set[Path] = set()
    if isinstance(value, dict) and not field.atomic_map:
        for key, sub_value in value.items():
            sub = field.field(key)
            path = prefix + ("f:" + key,)
            paths |= fields_of(sub_value, sub, path)
            if sub_value is None or sub_value == {} or not field.is_struct or _is_leaf(sub_value, sub):
                paths.add(path)
    elif isinstance(value, list) and not _is_leaf(value, field):
        item_field = field.items()
        for item in value:
            path = prefix + (item_element(item, field),)
            paths.add(path)
            if field.list_type != "set":
                paths |= fields_of(item, item_field, path)
    return paths


def all_nodes(value, field: Field, prefix: Path) -> set[Path]:
    """Every node of a subtree (what a comparison reports as added or removed)."""
    paths = {prefix}
    if isinstance(value, dict) and not field.atomic_map:
        for key, sub_value in value.items():
            paths |= all_nodes(sub_value, field.field(key), prefix + ("f:" + key,))
    elif isinstance(value, list) and not _is_leaf(value, field):
        for item in value:
            path = prefix + (item_element(item, field),)
            paths |= all_nodes(item, field.items(), path) if field.list_type != "set" else {path}
    return paths


@dataclass
class Comparison:
    added: set[Path] = dc_field(default_factory=set)
    modified: set[Path] = dc_field(default_factory=set)
    removed: set[Path] = dc_field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


def compare(old, new, field: Field, prefix: Path = (), out: Comparison | None = None) -> Comparison:
    """What changed from `old` to `new` (structured-merge-diff's Compare)."""
    out = out if out is not None else Comparison()
    both_maps = isinstance(old, dict) and isinstance(new, dict)
    both_lists = isinstance(old, list) and isinstance(new, list)
    if both_maps and not field.atomic_map:
        for key in old.keys() | new.keys():
            sub, path = field.field(key), prefix + ("f:" + key,)
            if key not in old:
                out.added |= all_nodes(new[key], sub, path)
            elif key not in new:
                out.removed |= all_nodes(old[key], sub, path)
            else:
                compare(old[key], new[key], sub, path, out)
    elif both_lists and not _is_leaf(new, field) and not _is_leaf(old, field):
        before, after = items_by_element(old, field), items_by_element(new, field)
        for element in before.keys() | after.keys():
            path = prefix + (element,)
            if element not in before:
                out.added |= all_nodes(after[element], field.items(), path)
            elif element not in after:
                out.removed |= all_nodes(before[element], field.items(), path)
            elif field.list_type != "set":
                compare(before[element], after[element], field.items(), path, out)
    elif old != new or type(old) is not type(new):
        out.modified.add(prefix)
    return out


def under(path: Path, paths: set[Path]) -> bool:
    """Is some path in `paths` equal to `path` or below it?"""
    n = len(path)
    return any(p[:n] == path for p in paths)

