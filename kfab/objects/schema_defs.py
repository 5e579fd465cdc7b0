"""The published Kubernetes schemas (from the kubernetes-validate package), loaded once.

One source for validation, OpenAPI documents and strategic-merge-patch keys, so they never disagree.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from kfab.objects import metrics_schema
from kfab.objects.registry import ResourceType

SCHEMA_VERSION = "v1.37.0-local"


@functools.cache
def definitions() -> dict[str, dict]:
    """{definition name: JSON schema}, e.g. "io.k8s.api.apps.v1.Deployment"; refs look like "#/$defs/<name>"."""
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION / "_definitions.json"
    return {**json.loads(path.read_text())["$defs"], **metrics_schema.DEFINITIONS}


_OUTSIDE_K8S_API = {"apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
                    "metrics.k8s.io": "io.k8s.metrics.pkg.apis.metrics"}


def definition_name(rt: ResourceType) -> str:
    if rt.custom is not None:
        # kube-apiserver names a CRD's definitions by the reversed group: stable.example.com -> com.example.stable
        return f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"
    if rt.group in _OUTSIDE_K8S_API:
        return f"{_OUTSIDE_K8S_API[rt.group]}.{rt.version}.{rt.kind}"
    # Go package naming: core -> io.k8s.api.core.v1, rbac.authorization.k8s.io -> io.k8s.api.rbac.v1
    package = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{package}.{rt.version}.{rt.kind}"


def resolve(schema: dict) -> dict:
    """Follow a {"$ref": "#/$defs/<name>"} to its definition; other schemas come back as they are."""
    ref = schema.get("$ref")
    if ref:
        return definitions()[ref.rsplit("/", 1)[1]]
    return schema


def kind_schema(rt: ResourceType) -> dict:
    if rt.custom is not None:
        return rt.custom.schema
    return definitions()[definition_name(rt)]
