"""Built-in kinds served in versions of different shapes: each is stored in one version (kube-apiserver's storage
version) and converted on the way in and out, so every served version reads and writes the same objects.

Every other kind (and a CustomResourceDefinition's versions, which differ in apiVersion only) passes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kfab.objects import hpa_versions


@dataclass(frozen=True)
class Versions:
    stored: str                                   # the apiVersion kept in the store
    to_stored: dict[str, Callable[[dict], dict]]  # served apiVersion -> its object in the stored version
    from_stored: dict[str, Callable[[dict], dict]]
    clean: Callable[[dict], dict]                 # a stored-version object as stored (drops what only others show)


KINDS = {
    ("autoscaling", "HorizontalPodAutoscaler"): Versions(
        hpa_versions.V2, {hpa_versions.V1: hpa_versions.to_v2}, {hpa_versions.V1: hpa_versions.to_v1},
        hpa_versions.drop_round_trip),
}


def _versions(obj: dict) -> Versions | None:
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return None
    return KINDS.get((api_version.rpartition("/")[0], obj.get("kind")))


def stored_version(group: str, kind: str) -> str | None:
    """The apiVersion a converted kind is stored in; None for kinds stored as they are served."""
    versions = KINDS.get((group, kind))
    return versions.stored if versions else None


def is_view(group: str, kind: str, api_version: str) -> bool:
    """A served version that is a conversion of another, stored one: controllers that walk every kind (garbage
    collector, namespace deletion) watch the stored version only."""
    stored = stored_version(group, kind)
    return stored is not None and stored != api_version


def to_stored(obj: dict) -> dict:
    """The object in its kind's stored version."""
    versions = _versions(obj)
    if versions is None:
        return obj
    if obj["apiVersion"] == versions.stored:
        return versions.clean(obj)
    return versions.to_stored[obj["apiVersion"]](obj)


def to_version(obj: dict, api_version: str) -> dict:
    """The object as `api_version` of its kind shows it."""
    versions = _versions(obj)
    if versions is None or obj.get("apiVersion") == api_version:
        return obj
    stored = to_stored(obj)
    return stored if api_version == versions.stored else versions.from_stored[api_version](stored)
