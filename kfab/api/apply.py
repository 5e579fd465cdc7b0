"""Server-side apply (`kubectl apply --server-side`).

Follows sigs.k8s.io/structured-merge-diff as kube-apiserver uses it:
- apply merges the applied configuration into the live object (maps by key, `list-type: map` lists by
  their keys, `set` lists by value, atomic lists and maps replaced);
- the applier then owns exactly the fields of its configuration (an `Apply` managedFields entry);
  fields it applied before and no longer applies are removed unless another manager owns them;
- changing a field another manager owns is a 409 Conflict unless `force`, which takes the field over;
- ordinary create/update/patch requests record an `Update` entry for their fieldManager with
  `record_update` (in `kfab.api.managedfields`, re-exported here).
"""

from __future__ import annotations

import json

import yaml

from kfab.objects import jsonwire
from kfab.objects.errors import APIError, Cause, bad_request
from kfab.api.fieldset import Path, compare, display, fields_of, item_element, under
from kfab.api.managedfields import (  # noqa: F401  (record_update and friends are re-exported)
    BEFORE_FIRST_APPLY,
    Manager,
    default_field_manager,
    find_manager,
    read_managers,
    record_update,
    timestamp,
    tracked,
    write_managers,
)
from kfab.api.patch_schema import Field
from kfab.objects.registry import ResourceType
from kfab.objects.meta import meta_of


# -- server-side apply -------------------------------------------------------------------------

def parse_apply_body(body: bytes | str) -> dict:
    """The body of an `application/apply-patch+yaml` request (YAML, or JSON which is YAML too)."""
    try:
        doc = yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {e}") from None
    if not isinstance(doc, dict):
        raise bad_request(f"error decoding YAML: the apply configuration must be an object, got {type(doc).__name__}")
    return doc


def server_side_apply(rt: ResourceType, live: dict | None, applied: dict | bytes | str, field_manager: str,
                      force: bool = False, now=None) -> dict:
    """The object after `field_manager` applies `applied` to `live` (None: the object is created).

    The caller still checks metadata.name/namespace against the URL, honours a resourceVersion in the
    configuration as a precondition, fills uid/creationTimestamp on create and runs admission.
    """
    if not isinstance(applied, dict):
        applied = parse_apply_body(applied)
    _check_configuration(rt, applied, field_manager)
    field = Field.for_kind(rt)
    config = tracked(rt, applied)
    live = jsonwire.clone(live) if live else {}
    if live and not meta_of(live).get("managedFields"):
        # As kube-apiserver: fields of an object nobody owns yet go to "before-first-apply", so the first
        # apply cannot silently change values somebody else set.
        live = record_update(None, live, BEFORE_FIRST_APPLY, now, rt=rt)
    managers = read_managers(meta_of(live).get("managedFields"))
    key = (field_manager, "Apply", "")
    mine = find_manager(managers, key)
    previously = set(mine.fields) if mine else set()
    applying = fields_of(config, field)

    merged = _merge(jsonwire.clone(live), jsonwire.clone(config), field)
    for name in ("apiVersion", "kind"):
        merged[name] = applied[name]
    for name in ("name", "namespace", "resourceVersion"):
        if name in applied.get("metadata", {}):
            merged.setdefault("metadata", {})[name] = applied["metadata"][name]
    others = [m for m in managers if m.key != key]
    owned_by_others = set().union(*(m.fields for m in others)) if others else set()
    _prune(merged, previously - applying - owned_by_others, applying | owned_by_others, field)

    diff = compare(tracked(rt, live), tracked(rt, merged), field)
    conflicts = [(m, sorted(m.fields & diff.changed)) for m in others if m.fields & diff.changed]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for m in others:
        m.fields -= diff.changed | diff.removed
    if mine is None:
        mine = Manager(field_manager, "Apply", rt.api_version, None, set())
        managers.append(mine)
    # As kube-apiserver (since 1.26): an apply that changes nothing keeps managedFields as they were,
    # timestamps included, so a no-op `kubectl apply --server-side` writes nothing.
    before = {m.key: m.fields for m in read_managers(meta_of(live).get("managedFields")) if m.fields}
    mine.fields, mine.api_version = applying, rt.api_version
    after = {m.key: m.fields for m in managers if m.fields}
    if mine.time is None or before != after or _without_managed(merged) != _without_managed(live):
        mine.time = timestamp(now)
    write_managers(merged, managers)
    return merged


def _without_managed(obj: dict) -> dict:
    return dict(obj, metadata={k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"})


def _check_configuration(rt: ResourceType, applied: dict, field_manager: str) -> None:
    if not field_manager:
        raise bad_request("fieldManager is required for apply requests")
    if not applied.get("apiVersion") or not applied.get("kind"):
        raise bad_request("the apply configuration must set apiVersion and kind")
    if applied["apiVersion"] != rt.api_version:
        raise bad_request("Incorrect version specified in apply patch. Specified patch version: "
                          f"{applied['apiVersion']}, expected: {rt.api_version}")
    if applied["kind"] != rt.kind:
        raise bad_request(f"the apply configuration is a {applied['kind']}, but this resource holds {rt.kind} objects")
    metadata = applied.get("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    if metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")


def _conflict_error(conflicts: list[tuple[Manager, list[Path]]]) -> APIError:
    causes = [Cause(display(p), f"conflict with {m.describe()}", "FieldManagerConflict")
              for m, paths in conflicts for p in paths]
    if len(causes) == 1:
        message = f"Apply failed with 1 conflict: conflict with {conflicts[0][0].describe()}: {causes[0].field}"
    else:
        lines = []
        for m, paths in sorted(conflicts, key=lambda c: c[0].name):
            lines.append(f"conflicts with {m.describe()}:")
            lines += [f"- {display(p)}" for p in paths]
        message = f"Apply failed with {len(causes)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, causes=causes)


# -- merging and pruning -----------------------------------------------------------------------

def _merge(live, config, field: Field):
    """Apply's merge: the configuration wins on leaves; maps and keyed lists merge."""
    if isinstance(live, dict) and isinstance(config, dict) and not field.atomic_map:
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _merge(out[key], value, field.field(key))
            else:
                out[key] = _without_nulls(value)
        return out
    if isinstance(live, list) and isinstance(config, list) and field.list_type in ("map", "set"):
        return _merge_list(live, config, field)
    return _without_nulls(config)


def _merge_list(live: list, config: list, field: Field) -> list:
    """structured-merge-diff's list merge: configuration order for shared items, live-only items kept
    where they were."""
    lhs = [(item_element(i, field), i) for i in live]
    rhs = [(item_element(i, field), i) for i in config]
    lhs_map, rhs_map = dict(lhs), dict(rhs)
    shared = [e for e, _ in rhs if e in lhs_map]
    out, li, ri = [], 0, 0

    def merged(element):
        if field.list_type == "set":
            return rhs_map[element]
        return _merge(lhs_map.get(element), rhs_map[element], field.items())

    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs) and lhs[li][0] == rhs[ri][0]:
            out.append(merged(rhs[ri][0]))
            shared.remove(rhs[ri][0])
            li, ri = li + 1, ri + 1
            continue
        if li < len(lhs):
            element = lhs[li][0]
            if element not in rhs_map:
                out.append(lhs[li][1])
                li += 1
                continue
            if shared and shared[0] != element:  # shared, but its turn comes later in config order
                li += 1
                continue
        if ri < len(rhs):
            element = rhs[ri][0]
            out.append(merged(element))
            if element in shared:
                shared.remove(element)
            ri += 1
        else:
            li += 1
    return out


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _prune(obj: dict, remove: set[Path], keep: set[Path], field: Field) -> None:
    """Delete fields the applier dropped from its configuration, unless someone still owns them or
    something below them; containers left empty by that go too."""
    for path in sorted(remove, key=len):
        if any(len(k) > len(path) and k[:len(path)] == path for k in keep):
            continue
        if _is_key_field(path):
            continue  # a list item someone still owns keeps the fields that identify it
        _delete(obj, path, field)
        for depth in range(len(path) - 1, 0, -1):
            parent = path[:depth]
            node = _get(obj, parent, field)
            if node in ({}, []) and not under(parent, keep):
                _delete(obj, parent, field)
            else:
                break


def _is_key_field(path: Path) -> bool:
    if len(path) < 2 or not path[-2].startswith("k:") or not path[-1].startswith("f:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def _walk(obj, path: Path, field: Field):
    """(container, key-or-index, Field of the node) for the node at path, or None if absent."""
    node, f, parent, slot = obj, field, None, None
    for element in path:
        if isinstance(node, dict) and element.startswith("f:"):
            name = element[2:]
            if name not in node:
                return None
            parent, slot, node, f = node, name, node[name], f.field(name)
        elif isinstance(node, list):
            index = next((i for i, item in enumerate(node) if item_element(item, f) == element), None)
            if index is None:
                return None
            parent, slot, node, f = node, index, node[index], f.items()
        else:
            return None
    return parent, slot, node


def _get(obj, path: Path, field: Field):
    found = _walk(obj, path, field)
    return found[2] if found else None


def _delete(obj, path: Path, field: Field) -> None:
    found = _walk(obj, path, field)
    if found and found[0] is not None:
        del found[0][found[1]]
