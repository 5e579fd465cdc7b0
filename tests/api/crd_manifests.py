"""CustomResourceDefinition manifests for tests: one served, stored version with the given schema."""

from __future__ import annotations

import yaml


def crd_manifest(group: str, plural: str, kind: str, schema: dict, scope: str = "Namespaced",
                 subresources: dict | None = None, singular: str | None = None) -> str:
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    if subresources is not None:
        version["subresources"] = subresources
    names = {"plural": plural, "kind": kind}
    if singular:
        names["singular"] = singular
    return yaml.safe_dump({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                           "metadata": {"name": f"{plural}.{group}"},
                           "spec": {"group": group, "scope": scope, "names": names, "versions": [version]}})


def object_with_spec(properties: dict) -> dict:
    """A root schema: an object whose `spec` has these properties."""
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}}
