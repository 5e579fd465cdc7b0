"""The resource kinds kfab serves: names, scope, short names, verbs and subresources.

One table, read by discovery, routing, admission, tables and the controllers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding", "log"
    verbs: tuple[str, ...] = ALL_VERBS
    singular_name: str = ""  # a CRD's spec.names.singular; built-in kinds use the lower-cased kind
    list_kind_name: str = ""  # a CRD's spec.names.listKind; built-in kinds use <Kind>List
    # What a CustomResourceDefinition adds (schema, printer columns, scale paths): kfab.objects.crd.CustomKind.
    custom: object = field(default=None, compare=False, hash=False)

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.list_kind_name or f"{self.kind}List"

    def store_prefix(self, namespace: str | None = None) -> str:
        """Key prefix in the state store: /registry/<group>/<plural>/[<namespace>/] (core group: no group part)."""
        base = f"/registry/{self.group}/{self.plural}/" if self.group else f"/registry/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def store_key(self, namespace: str | None, name: str) -> str:
        return f"{self.store_prefix(namespace if self.namespaced else None)}{name}"


def _core(kind, plural, namespaced=True, short=(), cats=(), sub=(), verbs=ALL_VERBS):
    return ResourceType("", "v1", kind, plural, namespaced, tuple(short), tuple(cats), tuple(sub), tuple(verbs))


def _grp(group, kind, plural, namespaced=True, short=(), cats=(), sub=(), verbs=ALL_VERBS, version="v1"):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(cats), tuple(sub), tuple(verbs))


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", namespaced=False, short=["ns"], sub=["status", "finalize"],
          verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _core("Node", "nodes", namespaced=False, short=["no"], sub=["status"]),
    _core("Pod", "pods", short=["po"], cats=["all"],
          sub=["status", "binding", "log", "exec", "attach", "portforward", "eviction"]),
    _core("Service", "services", short=["svc"], cats=["all"], sub=["status"],
          verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _core("Endpoints", "endpoints", short=["ep"]),
    _core("ConfigMap", "configmaps", short=["cm"]),
    _core("Secret", "secrets"),
    _core("Event", "events", short=["ev"]),
    _core("PersistentVolume", "persistentvolumes", namespaced=False, short=["pv"], sub=["status"]),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"], sub=["status"]),
    _core("ServiceAccount", "serviceaccounts", short=["sa"], sub=["token"]),
    _core("ResourceQuota", "resourcequotas", short=["quota"], sub=["status"]),
    _core("LimitRange", "limitranges", short=["limits"]),
    _grp("apps", "Deployment", "deployments", short=["deploy"], cats=["all"], sub=["status", "scale"]),
    _grp("apps", "ReplicaSet", "replicasets", short=["rs"], cats=["all"], sub=["status", "scale"]),
    _grp("apps", "StatefulSet", "statefulsets", short=["sts"], cats=["all"], sub=["status", "scale"]),
    _grp("apps", "DaemonSet", "daemonsets", short=["ds"], cats=["all"], sub=["status"]),
    _grp("apps", "ControllerRevision", "controllerrevisions"),
    _grp("policy", "PodDisruptionBudget", "poddisruptionbudgets", short=["pdb"], sub=["status"]),
    _grp("batch", "Job", "jobs", cats=["all"], sub=["status"]),
    _grp("batch", "CronJob", "cronjobs", short=["cj"], cats=["all"], sub=["status"]),
    _grp("discovery.k8s.io", "EndpointSlice", "endpointslices"),
    _grp("networking.k8s.io", "Ingress", "ingresses", short=["ing"], sub=["status"]),
    _grp("networking.k8s.io", "IngressClass", "ingressclasses", namespaced=False),
    _grp("networking.k8s.io", "NetworkPolicy", "networkpolicies", short=["netpol"]),
    _grp("storage.k8s.io", "StorageClass", "storageclasses", namespaced=False, short=["sc"]),
    _grp("coordination.k8s.io", "Lease", "leases"),
    _grp("scheduling.k8s.io", "PriorityClass", "priorityclasses", namespaced=False, short=["pc"]),
    _grp("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
         short=["crd", "crds"], cats=["api-extensions"], sub=["status"]),
    _grp("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=["hpa"], cats=["all"],
         sub=["status"], version="v2"),
    # The same objects as autoscaling/v1 shows them (kfab.objects.conversion); v2, listed first, is preferred.
    _grp("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=["hpa"], cats=["all"],
         sub=["status"]),
    # Virtual: answered from the node agents' resource metrics, never stored (kfab.api.metrics).
    _grp("metrics.k8s.io", "NodeMetrics", "nodes", namespaced=False, verbs=("get", "list"), version="v1beta1"),
    _grp("metrics.k8s.io", "PodMetrics", "pods", verbs=("get", "list"), version="v1beta1"),
    _grp("rbac.authorization.k8s.io", "Role", "roles"),
    _grp("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _grp("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", namespaced=False),
    _grp("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    # Virtual: created and answered, never stored (kubectl auth can-i).
    _grp("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False,
         verbs=("create",)),
    _grp("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews", namespaced=False,
         verbs=("create",)),
    _grp("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", namespaced=False, verbs=("create",)),
)


# Kinds whose DELETE answers with the object itself, also when it is gone at once: kube-apiserver's registries
# that set ReturnDeletedObject (and Namespace's own REST). Every other kind answers a deletion that completed
# with a Status; any kind still held by finalizers or a graceful shutdown answers with the marked object.
# The official client decodes the answer into the kind's model for the first group (V1PersistentVolumeClaim...).
DELETE_RETURNS_OBJECT = frozenset({
    ("", "Namespace"), ("", "Pod"), ("", "Service"), ("", "PersistentVolume"), ("", "PersistentVolumeClaim"),
    ("", "ServiceAccount"), ("", "PodTemplate"), ("", "ResourceQuota"), ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"), ("storage.k8s.io", "VolumeAttachment"),
})


def delete_returns_object(rt: ResourceType) -> bool:
    return (rt.group, rt.kind) in DELETE_RETURNS_OBJECT


@dataclass
class ResourceRegistry:
    types: tuple[ResourceType, ...] = RESOURCE_TYPES
    _by_path: dict = field(default_factory=dict, init=False)
    _by_kind: dict = field(default_factory=dict, init=False)
    generation: int = field(default=0, init=False)  # counts changes: cached documents (OpenAPI) compare it

    def __post_init__(self) -> None:
        for rt in self.types:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt

    def replace_group_resource(self, group: str, plural: str, served: list[ResourceType]) -> None:
        """Serve `served` (one ResourceType per version of a CustomResourceDefinition) in place of what this
        registry had for <plural>.<group>; an empty list stops serving it."""
        kept = tuple(rt for rt in self.types if not (rt.group == group and rt.plural == plural))
        self.types = kept + tuple(served)
        self._by_path = {(rt.group, rt.version, rt.plural): rt for rt in self.types}
        self._by_kind = {(rt.api_version, rt.kind): rt for rt in self.types}
        self.generation += 1

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """{group: [versions]} in table order, core group under ""."""
        out: dict[str, list[str]] = {}
        for rt in self.types:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.types if rt.group == group and rt.version == version]


REGISTRY = ResourceRegistry()
