"""Namespace controller: a Terminating namespace is emptied, then its `kubernetes` finalizer is removed so
the API deletes it (kube-controller-manager's namespace deleter).

Everything namespaced in it is deleted (deletecollection where the kind allows it); pods on nodes shut down
gracefully and may take a while, so the namespace is looked at again until nothing is left.
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller
from kfab.objects import conversion
from kfab.objects.crd import is_established, served_types
from kfab.objects.registry import REGISTRY, ResourceType

NAMESPACE = rt_of("Namespace")
FINALIZER = "kubernetes"
RECHECK = 1.0


CRD = rt_of("CustomResourceDefinition", "apiextensions.k8s.io/v1")


def namespaced_kinds(crds: list[dict]) -> list[ResourceType]:
    """Built-in namespaced kinds, and one version of each established namespaced custom resource."""
    kinds = [rt for rt in REGISTRY.types if rt.namespaced and "list" in rt.verbs and "delete" in rt.verbs
             and not conversion.is_view(rt.group, rt.kind, rt.api_version)]
    for crd in crds:
        served = served_types(crd) if is_established(crd) else []
        if served and served[0].namespaced:
            kinds.append(served[0])
    return kinds


class NamespaceController(Controller):
    name = "namespace-controller"
    workers = 2

    def setup(self) -> None:
        self.namespaces = self.ctx.informer(NAMESPACE)
        self.namespaces.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new))
        self.crds = self.ctx.informer(CRD)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        remaining = 0
        for rt in namespaced_kinds(self.crds.list()):
            remaining += await self._delete_all(rt, key)
        if remaining:
            return RECHECK
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        try:
            await self.client.finalize_namespace(ns, finalizers)
        except APIStatusError as e:
            if not e.not_found:
                raise
        return None

    async def _delete_all(self, rt: ResourceType, namespace: str) -> int:
        """Delete what is left of one kind; returns how many objects are still there."""
        items = (await self.client.list(rt, namespace))["items"]
        if not items:
            return 0
        if "deletecollection" in rt.verbs:
            await self.client.delete_collection(rt, namespace, propagation_policy="Background")
        else:
            for obj in items:
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(rt, namespace, obj["metadata"]["name"], propagation_policy="Background")
                except APIStatusError as e:
                    if not e.not_found:
                        raise
        return len((await self.client.list(rt, namespace))["items"])
