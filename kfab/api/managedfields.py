"""Field ownership: `metadata.managedFields` entries and the `Update` entries ordinary writes record.

Each entry names a manager (the request's fieldManager), its operation (`Apply` for server-side apply,
`Update` for create/update/patch), and the set of fields it owns (FieldsV1, see `kfab.api.fieldset`).
`record_update` is what kube-apiserver's field manager does on every non-apply write: the writer's
`Update` entry gains the fields it added or changed, other managers lose them (updates never conflict).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from kfab.api.fieldset import Path, compare, from_fields_v1, items_by_element, to_fields_v1
from kfab.api.patch_schema import Field
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.objects.meta import meta_of

# Fields the apiserver owns itself; never part of anyone's field set (managedfields' stripmeta).
_SYSTEM_METADATA = ("name", "namespace", "creationTimestamp", "selfLink", "uid", "generation",
                    "managedFields", "resourceVersion")


BEFORE_FIRST_APPLY = "before-first-apply"


# -- managedFields entries ---------------------------------------------------------------------

@dataclass
class Manager:
    name: str
    operation: str  # "Apply" | "Update"
    api_version: str
    time: str | None
    fields: set[Path]
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.operation, self.subresource)

    def describe(self) -> str:
        # kube-apiserver's printManager: Update managers are named with their apiVersion.
        text = json.dumps(self.name)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def entry(self) -> dict:
        out = {"manager": self.name, "operation": self.operation, "apiVersion": self.api_version,
               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read_managers(entries) -> list[Manager]:
    """Decode metadata.managedFields; entries that are not FieldsV1 objects are dropped."""
    managers = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("manager"), str):
            continue
        if e.get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(e.get("fieldsV1", {}), dict):
            continue
        managers.append(Manager(e["manager"], e.get("operation") or "Update", e.get("apiVersion") or "",
                                e.get("time"), from_fields_v1(e.get("fieldsV1") or {}), e.get("subresource") or ""))
    return managers


def write_managers(obj: dict, managers: list[Manager]) -> None:
    # kube-apiserver's order: Apply before Update, then by time, manager name, apiVersion, subresource.
    kept = sorted((m for m in managers if m.fields),
                  key=lambda m: (m.operation, m.time or "", m.name, m.api_version, m.subresource))
    metadata = obj.setdefault("metadata", {})
    if kept:
        metadata["managedFields"] = [m.entry() for m in kept]
    else:
        metadata.pop("managedFields", None)


def timestamp(when=None) -> str:
    if isinstance(when, str):
        return when
    when = when or dt.datetime.now(dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tracked(rt: ResourceType, obj: dict | None, subresource: str = "") -> dict:
    """The part of an object whose fields have owners: no system metadata; status only via /status."""
    if not isinstance(obj, dict):
        return {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in _SYSTEM_METADATA}
        if not out["metadata"]:
            del out["metadata"]
    if "status" in rt.subresources:
        if subresource == "status":
            out = {"status": out["status"]} if "status" in out else {}
        else:
            out.pop("status", None)
    return out


def default_field_manager(user_agent: str | None) -> str:
    """The manager name kube-apiserver records when a request sets no fieldManager: the User-Agent up to
    its first "/" ("kubectl", "OpenAPI-Generator"), at most 128 characters."""
    return (user_agent or "").split("/", 1)[0][:128] or "unknown"


# -- ordinary writes ---------------------------------------------------------------------------

def record_update(old: dict | None, new: dict, manager: str, operation_time=None, *,
                  rt: ResourceType | None = None, subresource: str = "") -> dict:
    """`new` with metadata.managedFields updated for a create/update/patch by `manager`.

    The manager's `Update` entry gains the fields this write added or changed and loses those it removed;
    other managers lose the fields this write changed (updates never conflict). As kube-apiserver does,
    managedFields sent by the client are kept when they differ from the stored ones (kubectl uses that to
    migrate client-side-apply ownership), `[{}]` resets them, and an empty list means "unchanged".
    `rt` defaults to the kind named by `new`; without a known kind only metadata is tracked loosely.
    """
    # Only metadata.managedFields is written: a copy of the top level and of metadata keeps `new` as it was.
    new = dict(new, metadata=dict(new["metadata"])) if isinstance(new.get("metadata"), dict) else dict(new)
    rt = rt or _kind_of(new)
    field = Field.for_kind(rt) if rt else Field.of({})
    old_entries = ((old or {}).get("metadata") or {}).get("managedFields")
    sent = meta_of(new).get("managedFields")
    if sent == [{}]:
        managers: list[Manager] = []
    elif isinstance(sent, list) and sent and sent != old_entries:
        managers = read_managers(sent)
    else:
        managers = read_managers(old_entries)
    stub = rt or ResourceType("", "", "", "", True)
    before, after = tracked(stub, old, subresource), tracked(stub, new, subresource)
    diff = compare(before, after, field)
    api_version = new.get("apiVersion") or (rt.api_version if rt else "")
    mine = find_manager(managers, (manager, "Update", subresource))
    for other in managers:
        if other is not mine:
            other.fields -= diff.changed | diff.removed
    lists: dict[int, dict] = {}  # each list's items by path element, worked out once for all paths
    gained = {p for p in diff.changed if _ownable(p, after, field, lists)}
    if mine is None and gained:
        mine = Manager(manager, "Update", api_version, None, set(), subresource)
        managers.append(mine)
    if mine is not None:
        updated = (mine.fields - diff.removed) | gained
        if updated != mine.fields or mine.time is None:
            mine.time = timestamp(operation_time)
        mine.fields, mine.api_version = updated, api_version
    write_managers(new, managers)
    return new


def _ownable(path: Path, obj: dict, field: Field, lists: dict[int, dict]) -> bool:
    """Leaves, list items, maps and lists can be owned; a plain struct (spec, template) only through its
    fields (kube-apiserver gets the same effect by comparing against the kind's zero value).
    `lists`: id of a list in obj -> its items by element (filled as lists are met)."""
    node, f = obj, field
    for element in path:
        if isinstance(node, dict) and element.startswith("f:"):
            node, f = node.get(element[2:]), f.field(element[2:])
        elif isinstance(node, list):
            items = lists.get(id(node))
            if items is None:
                items = lists[id(node)] = items_by_element(node, f)
            node, f = items.get(element), f.items()
        else:
            return True
    return not (isinstance(node, dict) and node and f.is_struct and not f.atomic_map
                and not path[-1].startswith(("k:", "v:")))


def _kind_of(obj: dict) -> ResourceType | None:
    return REGISTRY.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))


def find_manager(managers: list[Manager], key) -> Manager | None:
    return next((m for m in managers if m.key == key), None)
