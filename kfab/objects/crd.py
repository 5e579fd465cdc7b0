"""A CustomResourceDefinition read as what it serves: one ResourceType per served version, with its schema,
printer columns and subresources, and the naming checks of apiextensions-apiserver's NamingConditionController.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kfab.objects.registry import ResourceType
from kfab.objects.meta import meta_of, spec_of, status_of

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
CRD_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")

# Verbs of a custom resource (apiextensions-apiserver serves them all).
CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    spec_replicas: str  # `.spec.replicas`
    status_replicas: str
    label_selector: str = ""


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CustomKind:
    """What a ResourceType of a custom resource carries beyond names (ResourceType.custom)."""

    crd_name: str
    schema: dict = field(compare=False, hash=False)  # openAPIV3Schema of this version
    storage_version: str = ""
    status: bool = False
    scale: ScalePaths | None = None
    columns: tuple[PrinterColumn, ...] = ()


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple:
    """Kubernetes' version order: GA > beta > alpha, higher numbers first, then the rest alphabetically."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, "")


def served_types(crd: dict) -> list[ResourceType]:
    """The ResourceTypes a CRD serves, preferred version first."""
    spec = spec_of(crd)
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served")]
    storage = next((v.get("name") for v in spec.get("versions") or [] if v.get("storage")), "")
    out = []
    for v in sorted(versions, key=lambda v: version_priority(v.get("name", ""))):
        subresources = v.get("subresources") or {}
        scale = subresources.get("scale")
        custom = CustomKind(
            crd_name=meta_of(crd).get("name", ""),
            schema=((v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object",
                                                                      "x-kubernetes-preserve-unknown-fields": True}),
            storage_version=storage,
            status="status" in subresources,
            scale=ScalePaths(scale.get("specReplicasPath", ""), scale.get("statusReplicasPath", ""),
                             scale.get("labelSelectorPath", "")) if isinstance(scale, dict) else None,
            columns=tuple(PrinterColumn(c.get("name", ""), c.get("type", "string"), c.get("jsonPath", ""),
                                        c.get("format", ""), c.get("description", ""), int(c.get("priority") or 0))
                          for c in v.get("additionalPrinterColumns") or ()),
        )
        out.append(ResourceType(
            group=spec.get("group", ""), version=v.get("name", ""), kind=names.get("kind", ""),
            plural=names.get("plural", ""), namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subresources), verbs=CR_VERBS,
            singular_name=names.get("singular") or names.get("kind", "").lower(),
            list_kind_name=names.get("listKind") or f"{names.get('kind', '')}List", custom=custom))
    return out


def names_conflict(crd: dict, others: list[dict], builtin: list[ResourceType]) -> tuple[str, str] | None:
    """(reason, message) when the CRD's names clash with another established CRD of the same group or a
    built-in resource, as the NamingConditionController reports them; None when the names are accepted."""
    spec = spec_of(crd)
    group, names = spec.get("group", ""), spec.get("names") or {}
    plural, singular = names.get("plural", ""), names.get("singular") or names.get("kind", "").lower()
    taken_resources: set[str] = set()
    taken_kinds: set[str] = set()
    for rt in builtin:
        if rt.group == group and rt.custom is None:
            taken_resources |= {rt.plural, rt.singular, *rt.short_names}
            taken_kinds |= {rt.kind, rt.list_kind}
    for other in others:
        ospec = spec_of(other)
        if ospec.get("group") != group or meta_of(other).get("name") == crd["metadata"]["name"]:
            continue
        accepted = status_of(other).get("acceptedNames") or {}
        if not accepted:
            continue
        taken_resources |= {accepted.get("plural", ""), accepted.get("singular", ""),
                            *(accepted.get("shortNames") or ())}
        taken_kinds |= {accepted.get("kind", ""), accepted.get("listKind", "")}
    if plural in taken_resources:
        return "PluralConflict", f'"{plural}" is already in use'
    if singular in taken_resources:
        return "SingularConflict", f'"{singular}" is already in use'
    for short in names.get("shortNames") or ():
        if short in taken_resources:
            return "ShortNamesConflict", f'"{short}" is already in use'
    kind = names.get("kind", "")
    if kind in taken_kinds:
        return "KindConflict", f'"{kind}" is already in use'
    list_kind = names.get("listKind") or f"{kind}List"
    if list_kind in taken_kinds:
        return "ListKindConflict", f'"{list_kind}" is already in use'
    return None


def accepted_names(crd: dict) -> dict:
    names = dict(spec_of(crd).get("names") or {})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    return names


def condition(crd: dict, kind: str) -> dict | None:
    return next((c for c in status_of(crd).get("conditions") or [] if c.get("type") == kind), None)


def is_established(crd: dict) -> bool:
    c = condition(crd, "Established")
    return bool(c) and c.get("status") == "True"
