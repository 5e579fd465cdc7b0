"""What every cluster has from its first start: the system namespaces (as kube-apiserver's
system-namespaces controller creates them). Idempotent and safe to run from two API servers at once."""

from __future__ import annotations

from kfab.api import strategy
from kfab.api.errors import APIError
from kfab.api.storage import ResourceStorage
from kfab.objects.registry import REGISTRY
from kfab.store.base import Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap_namespaces(store: Store) -> list[str]:
    """Create the system namespaces that are missing; returns the names created."""
    storage = ResourceStorage(store)
    rt = REGISTRY.by_path("", "v1", "namespaces")
    created = []
    for name in SYSTEM_NAMESPACES:
        if await storage.get_or_none(rt, None, name) is not None:
            continue
        obj = strategy.prepare_create(rt, {"metadata": {"name": name, "labels": {
            "kubernetes.io/metadata.name": name}}}, None)
        try:
            await storage.create(rt, obj)
            created.append(name)
        except APIError as e:
            if e.reason != "AlreadyExists":  # another API server made it first: fine
                raise
    return created
