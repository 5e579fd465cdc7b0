"""What the published schema says about merging one field: its shape, patch strategy and list keys.

Strategic merge patch and server-side apply both walk an object together with its kind's schema
(`kfab.objects.schema_defs`), so they agree on which lists merge by which key. A field the schema does
not know is `UNKNOWN`: maps merge key by key, lists are replaced (as Kubernetes does for unstructured data).
"""

from __future__ import annotations

from dataclasses import dataclass

from kfab.objects.registry import ResourceType
from kfab.objects.schema_defs import kind_schema, resolve

_EMPTY: dict = {}


def _types(schema: dict) -> set[str]:
    t = schema.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


@dataclass(frozen=True)
class Field:
    """One field's schema (resolved through `$ref`) plus the `x-kubernetes-*` markers that govern merging.

    The markers are read from both the property (where `patch-strategy` and `list-type` live) and the
    referenced definition (where e.g. LabelSelector's `map-type: atomic` lives).
    """

    schema: dict
    strategies: frozenset[str] = frozenset()
    merge_key: str | None = None
    list_type: str | None = None  # "atomic" | "set" | "map" | None (atomic)
    list_keys: tuple[str, ...] = ()
    map_type: str | None = None  # "atomic" | "granular" | None (granular)

    @staticmethod
    def of(prop: dict | None) -> "Field":
        if not prop:
            return UNKNOWN
        # Every write walks the kind's schema (managedFields): read each schema node once.
        hit = _READ.get(id(prop))
        if hit is not None and hit[0] is prop:
            return hit[1]
        if len(_READ) > _READ_LIMIT:
            _READ.clear()
        field = Field._read(prop)
        _READ[id(prop)] = (prop, field)  # holding `prop` keeps its id from being reused
        return field

    @staticmethod
    def _read(prop: dict) -> "Field":
        target = resolve(prop)

        def marker(name):
            return prop.get(name, target.get(name))

        strategy = marker("x-kubernetes-patch-strategy") or ""
        return Field(
            schema=target,
            strategies=frozenset(s.strip() for s in strategy.split(",") if s.strip()),
            merge_key=marker("x-kubernetes-patch-merge-key"),
            list_type=marker("x-kubernetes-list-type"),
            list_keys=tuple(marker("x-kubernetes-list-map-keys") or ()),
            map_type=marker("x-kubernetes-map-type"),
        )

    @staticmethod
    def for_kind(rt: ResourceType) -> "Field":
        return Field.of(kind_schema(rt))

    # -- shape -------------------------------------------------------------------------------
    @property
    def known(self) -> bool:
        return self.schema is not _EMPTY

    @property
    def is_struct(self) -> bool:
        """An object with named fields (a Go struct), as opposed to a map with free keys."""
        return "properties" in self.schema

    @property
    def atomic_map(self) -> bool:
        return self.map_type == "atomic"

    # -- strategic merge patch ---------------------------------------------------------------
    @property
    def merge_list(self) -> bool:
        return "merge" in self.strategies

    @property
    def replace_map(self) -> bool:
        return "replace" in self.strategies

    # -- navigation --------------------------------------------------------------------------
    def field(self, name: str) -> "Field":
        props = self.schema.get("properties")
        if props is not None:
            return Field.of(props.get(name))
        extra = self.schema.get("additionalProperties")
        if isinstance(extra, dict):
            return Field.of(extra)
        return UNKNOWN

    def items(self) -> "Field":
        items = self.schema.get("items")
        return Field.of(items) if isinstance(items, dict) else UNKNOWN


UNKNOWN = Field(schema=_EMPTY)
_READ: dict[int, tuple[dict, Field]] = {}
_READ_LIMIT = 100_000  # schema nodes; CRD changes bring new ones, so the memo is bounded
