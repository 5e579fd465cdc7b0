"""Shared by the admission unit tests: a chain over a real SQLite store with namespaces in it, each with its
`default` ServiceAccount (the controller's work in a cluster; pods are refused without it)."""

from __future__ import annotations

import asyncio
import itertools
import json

from kfab.api.admission import AdmissionChain, AdmissionRequest
from kfab.objects.registry import REGISTRY
from kfab.store import open_store

NAMESPACE = REGISTRY.by_kind("v1", "Namespace")
SERVICE_ACCOUNT = REGISTRY.by_kind("v1", "ServiceAccount")
_DB_NUMBERS = itertools.count()


def run(coro):
    return asyncio.run(coro)


async def open_chain(tmp_path, namespaces=("default",), **kwargs):
    store = await open_store(f"sqlite:///{tmp_path}/state-{next(_DB_NUMBERS)}.db")
    for ns in namespaces:
        await store.create(NAMESPACE.store_key(None, ns),
                           json.dumps({"metadata": {"name": ns}, "status": {"phase": "Active"}}).encode())
        await store.create(SERVICE_ACCOUNT.store_key(ns, "default"),
                           json.dumps({"metadata": {"name": "default", "namespace": ns, "uid": f"sa-{ns}"}}).encode())
    return store, AdmissionChain(store, **kwargs)


def kind(api_version: str, kind_name: str):
    return REGISTRY.by_kind(api_version, kind_name)


def create_request(obj: dict, namespace: str | None = "default", **kwargs) -> AdmissionRequest:
    rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
    meta = obj.setdefault("metadata", {})
    if rt.namespaced and namespace:
        meta.setdefault("namespace", namespace)
    return AdmissionRequest("CREATE", rt, None, namespace if rt.namespaced else None, meta.get("name", ""), obj,
                            None, None, **kwargs)


def update_request(obj: dict, old: dict, subresource: str | None = None, **kwargs) -> AdmissionRequest:
    rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
    meta = obj.get("metadata", {})
    return AdmissionRequest("UPDATE", rt, subresource, meta.get("namespace"), meta.get("name", ""), obj, old, None,
                            **kwargs)
