"""The admission chain every create, update and delete passes before the store write.

    schema decoding (wrong types: 400; unknown fields per fieldValidation: 400 under Strict, warnings under
    Warn, dropped unless Strict) -> namespace lifecycle (404/403) -> kind defaults (+ the default admission
    plugins: tolerations, default StorageClass and IngressClass; for new Pods LimitRanger defaults, service
    account, priority) -> validation, schema and semantic causes together (422: names, labels, required,
    ranges, immutables) -> LimitRanger limits, ResourceQuota (403, charging the quota) -> allocation (Service
    ClusterIP/NodePorts, 422 on conflicts)

Use from the API core:

    async with chain.admitted(req) as (obj, warnings):   # raises APIError: nothing allocated is kept
        await store.create(key, encode(obj))              # an exception here frees what admission allocated
    ...
    await chain.after_delete(rt, deleted_obj)             # once an object is really gone from the store

or the explicit form: `obj, warnings = await chain.admit(req)`, then `await chain.commit(req)` after a
successful write or `await chain.abort(req)` after a failed one (both are no-ops for kinds that allocate
nothing). The API core fills generic metadata (namespace, name from generateName, uid, timestamps) first.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator

from kfab.api import limitrange_admission, priority_admission, quota_admission, serviceaccount_admission
from kfab.objects.errors import APIError, Cause, bad_request
from kfab.objects import conversion, crd_schema, jsonwire, schema, validation
from kfab.api.allocator import DEFAULT_NODE_PORTS, DEFAULT_SERVICE_CIDR, Allocation, ServiceAllocator, carry_over
from kfab.api import node_restriction
from kfab.api.pod_security import PodSecurityAdmission, PodSecurityConfig
from kfab.api.toleration_admission import DefaultTolerationSeconds
from kfab.objects.defaults import apply_defaults
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.objects.validation.field import invalid_error
from kfab.store.base import Store
from kfab.objects.meta import meta_of, status_of

if TYPE_CHECKING:
    from kfab.api.auth import UserInfo

# Namespaces the cluster itself needs (NamespaceLifecycle's immortal namespaces).
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
_NAMESPACE = REGISTRY.by_kind("v1", "Namespace")
_STORAGE_CLASS = REGISTRY.by_kind("storage.k8s.io/v1", "StorageClass")
DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_INGRESS_CLASS = REGISTRY.by_kind("networking.k8s.io/v1", "IngressClass")


@dataclass
class AdmissionRequest:
    operation: str  # "CREATE" | "UPDATE" | "DELETE"
    resource: ResourceType
    subresource: str | None
    namespace: str | None
    name: str
    obj: dict | None
    old: dict | None
    user: "UserInfo | None"
    dry_run: bool = False
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    # Set by admit() for Services: the IPs/ports this request holds until commit()/abort().
    allocation: Allocation | None = field(default=None, repr=False)
    # Set by admission plugins (Pod Security): key -> value for the request's audit event
    audit_annotations: dict[str, str] = field(default_factory=dict, repr=False)


class AdmissionChain:
    def __init__(self, store: Store, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 node_ports: tuple[int, int] = DEFAULT_NODE_PORTS, pod_security: PodSecurityConfig | None = None,
                 default_tolerations: DefaultTolerationSeconds | None = None):
        self.store = store
        self.default_tolerations = default_tolerations or DefaultTolerationSeconds()
        self.allocator = ServiceAllocator(store, service_cidr, node_ports)
        self.pod_security = PodSecurityAdmission(store, pod_security)

    # --- the chain --------------------------------------------------------------------------------
    async def admit(self, req: AdmissionRequest) -> tuple[dict | None, list[str]]:
        rt = req.resource
        node_restriction.admit(req)
        if req.operation == "DELETE":
            self._check_delete(req)
            return None, []
        if req.operation not in ("CREATE", "UPDATE"):
            raise bad_request(f"unknown admission operation {req.operation!r}")
        if req.obj is None:
            raise bad_request(f"{rt.kind} {req.operation.lower()} without an object")
        obj = jsonwire.clone(req.obj)
        # As kube-apiserver: decoding (types, unknown fields) before admission plugins, validation after.
        warnings, schema_causes = self._check_schema(req, obj)
        if req.operation == "CREATE":
            await self._check_namespace(req)
        old = req.old or {}
        stored = conversion.stored_version(rt.group, rt.kind)
        if stored is not None:  # defaulted and validated in its stored version, as kube-apiserver in its internal one
            rt, obj, old = REGISTRY.by_kind(stored, rt.kind), conversion.to_stored(obj), conversion.to_stored(old)
        if rt.custom is None:
            apply_defaults(rt, obj, req.operation)
        if req.operation == "UPDATE" and rt.kind == "Service" and req.subresource is None:
            carry_over(obj, old)
        if req.operation == "CREATE" and rt.kind == "PersistentVolumeClaim":
            await self._default_storage_class(obj)
        if req.operation == "CREATE" and rt.kind == "Ingress" and rt.group == "networking.k8s.io":
            await self._default_ingress_class(obj)
        if req.operation == "CREATE" and rt.kind == "Pod" and rt.group == "":
            await self._admit_new_pod(req, obj)
        if req.operation == "CREATE":
            causes = validation.validate_create(rt, obj)
        else:
            causes = validation.validate_update(rt, obj, old, req.subresource)
        causes = _merge(schema_causes, causes)
        if causes:
            raise invalid_error(rt.kind, rt.group, self._name(req, obj), causes)
        warnings = warnings + await self.pod_security.admit(req, obj)  # before quota charges anything
        if req.operation == "CREATE" and req.subresource is None and limitrange_admission.applies(rt):
            limitrange_admission.validate(rt, obj, await limitrange_admission.limit_ranges(self.store, req.namespace))
        if req.subresource is None:
            await quota_admission.admit(self.store, rt, obj, req.namespace, req.dry_run,
                                        req.old if req.operation == "UPDATE" else None)
        if rt.kind == "PriorityClass" and rt.group == "scheduling.k8s.io" and req.subresource is None:
            await priority_admission.admit_priority_class(self.store, obj)
        if rt.kind == "Service" and req.subresource is None:
            req.allocation = await self.allocator.allocate(obj, req.old, req.dry_run)
        return conversion.to_version(obj, req.resource.api_version), warnings

    async def commit(self, req: AdmissionRequest) -> None:
        """The object admit() returned is stored: let go of what the old object held and the new one dropped."""
        if req.allocation is not None:
            await self.allocator.commit(req.allocation)
            req.allocation = None

    async def abort(self, req: AdmissionRequest) -> None:
        """The write after admit() failed: free what admit() allocated."""
        if req.allocation is not None:
            await self.allocator.abort(req.allocation)
            req.allocation = None

    @contextlib.asynccontextmanager
    async def admitted(self, req: AdmissionRequest) -> AsyncIterator[tuple[dict | None, list[str]]]:
        result = await self.admit(req)
        try:
            yield result
        except BaseException:
            await self.abort(req)
            raise
        await self.commit(req)

    async def after_delete(self, rt: ResourceType, obj: dict) -> None:
        """An object was removed from the store: free what it held (a Service's ClusterIP and nodePorts)."""
        if rt.kind == "Service" and rt.group == "":
            await self.allocator.release_service(obj)

    # --- steps ------------------------------------------------------------------------------------
    @staticmethod
    def _name(req: AdmissionRequest, obj: dict) -> str:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        return req.name or meta.get("name") or meta.get("generateName") or ""

    @staticmethod
    def _check_delete(req: AdmissionRequest) -> None:
        rt = req.resource
        if rt.kind == "Namespace" and rt.group == "" and req.name in IMMORTAL_NAMESPACES:
            raise APIError(403, "Forbidden", f'namespaces "{req.name}" is forbidden: this namespace may not be '
                           "deleted", name=req.name, kind="namespaces")

    async def _check_namespace(self, req: AdmissionRequest) -> None:
        """Namespaced objects go only into a namespace that exists and is not being deleted."""
        rt = req.resource
        if not rt.namespaced or not req.namespace:
            return
        kv = await self.store.get(_NAMESPACE.store_key(None, req.namespace))
        if kv is None:
            raise APIError(404, "NotFound", f'namespaces "{req.namespace}" not found', name=req.namespace,
                           kind="namespaces")
        ns = json.loads(kv.value)
        terminating = meta_of(ns).get("deletionTimestamp") or \
            status_of(ns).get("phase") == "Terminating"
        if terminating:
            resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            raise APIError(
                403, "Forbidden", f'{resource} "{req.name}" is forbidden: unable to create new content in namespace '
                f"{req.namespace} because it is being terminated", name=req.name, group=rt.group or None,
                kind=rt.plural,
                causes=[Cause("metadata.namespace", f"namespace {req.namespace} is being terminated",
                              "NamespaceTerminating")])

    @staticmethod
    def _check_schema(req: AdmissionRequest, obj: dict) -> tuple[list[str], list[Cause]]:
        """Raise 400 for what cannot be decoded (wrong types; unknown fields under Strict); return the
        warnings (unknown fields under Warn) and the schema's 422 causes (required fields, enums)."""
        if req.subresource not in (None, "status"):
            return [], []
        rt = req.resource
        if rt.custom is not None:
            return AdmissionChain._check_custom_schema(req, obj)
        causes, unknown = schema.check(rt, obj)
        error = schema.schema_error(rt, AdmissionChain._name(req, obj),
                                    [c for c in causes if c.reason == schema.TYPE_INVALID])
        if error is not None:
            raise error
        warnings: list[str] = []
        if req.field_validation in ("Strict", "Warn"):
            if unknown and req.field_validation == "Strict":
                raise schema.unknown_fields_error(rt, unknown)
            warnings = schema.unknown_field_warnings(unknown)
        for path in unknown:
            _drop(obj, path)  # kube-apiserver's decoder never keeps a field its types do not have
        return warnings, causes

    @staticmethod
    def _check_custom_schema(req: AdmissionRequest, obj: dict) -> tuple[list[str], list[Cause]]:
        """A custom resource against its CRD version's structural schema: unknown fields pruned (400 under
        Strict), defaults filled, then every schema error as a 422 cause (kube-apiserver decodes custom
        resources into unstructured maps, so a wrong type is a validation error there, not a decoding one)."""
        rt = req.resource
        unknown = crd_schema.prune(rt.custom.schema, obj)
        if unknown and req.field_validation == "Strict":
            raise schema.unknown_fields_error(rt, unknown)
        warnings = schema.unknown_field_warnings(unknown) if req.field_validation == "Warn" else []
        crd_schema.default(rt.custom.schema, obj)
        return warnings, crd_schema.validate(rt.custom.schema, obj, req.old)

    async def _admit_new_pod(self, req: AdmissionRequest, pod: dict) -> None:
        """The mutating plugins a new Pod passes, in kube-apiserver's order: LimitRanger, ServiceAccount, Priority,
        DefaultTolerationSeconds."""
        limitrange_admission.default_pod(pod, await limitrange_admission.limit_ranges(self.store, req.namespace))
        await serviceaccount_admission.admit_pod(self.store, pod, req.namespace)
        await priority_admission.admit_pod(self.store, pod, (req.obj or {}).get("spec") or {})
        self.default_tolerations.admit(pod)

    async def _default_storage_class(self, pvc: dict) -> None:
        """The DefaultStorageClass admission plugin: a claim that names no class gets the default one."""
        spec = pvc.get("spec")
        if not isinstance(spec, dict) or "storageClassName" in spec:
            return
        default = await self._newest_default(_STORAGE_CLASS, DEFAULT_STORAGE_CLASS_ANNOTATION)
        if default:
            spec["storageClassName"] = default

    async def _default_ingress_class(self, ingress: dict) -> None:
        """The DefaultIngressClass admission plugin: an Ingress that names no class (by field or by the old
        annotation) gets the default one."""
        spec = ingress.get("spec")
        annotations = meta_of(ingress).get("annotations") or {}
        if not isinstance(spec, dict) or spec.get("ingressClassName") or INGRESS_CLASS_ANNOTATION in annotations:
            return
        default = await self._newest_default(_INGRESS_CLASS, DEFAULT_INGRESS_CLASS_ANNOTATION)
        if default:
            spec["ingressClassName"] = default

    async def _newest_default(self, rt: ResourceType, annotation: str) -> str | None:
        """The class marked default by `annotation`; of several, the newest, as kube-apiserver has chosen since 1.28."""
        classes, _ = await self.store.list(rt.store_prefix())
        defaults = []
        for kv in classes:
            meta = json.loads(kv.value).get("metadata") or {}
            if (meta.get("annotations") or {}).get(annotation) == "true":
                defaults.append((meta.get("creationTimestamp") or "", meta.get("name") or ""))
        return max(defaults)[1] if defaults else None


def _merge(schema_causes: list[Cause], causes: list[Cause]) -> list[Cause]:
    """Schema causes first; a semantic cause for the same field and reason says the same thing again."""
    # ...unless it says more (`Required value: pathType must be specified`): then it takes the schema's place.
    semantic = {(c.field, c.reason): c for c in causes}
    merged = [semantic[(c.field, c.reason)] if len(semantic.get((c.field, c.reason), c).message) > len(c.message)
              else c for c in schema_causes]
    seen = {(c.field, c.reason) for c in schema_causes}
    return merged + [c for c in causes if (c.field, c.reason) not in seen]


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _drop(obj: object, path: str) -> None:
    """Remove the field at a path like `spec.template.spec.containers[0].foo` (a key may itself hold dots)."""
    parts = [int(index) if index else key for key, index in _PATH_PART.findall(path)]
    node, i = obj, 0
    while i < len(parts):
        part = parts[i]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return
            node, i = node[part], i + 1
            continue
        if not isinstance(node, dict):
            return
        # The longest run of parts that names a key here: unknown keys may contain dots.
        for j in range(len(parts), i, -1):
            run = parts[i:j]
            if all(isinstance(p, str) for p in run) and ".".join(run) in node:
                key = ".".join(run)
                break
        else:
            return
        if j == len(parts):
            del node[key]
            return
        node, i = node[key], j
