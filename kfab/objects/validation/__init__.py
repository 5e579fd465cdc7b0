"""Semantic validation of objects, per kind, as kube-apiserver's strategies run it on create and update.

`validate_create(rt, obj)` and `validate_update(rt, obj, old, subresource)` return the field errors
(kfab.objects.errors.Cause); an empty list means valid. Schema checks (types, unknown fields) are separate:
kfab.objects.schema.
"""

from __future__ import annotations

from typing import Callable

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.registry import ResourceType
from kfab.objects.validation import (apiextensions, apps, autoscaling, batch, core, networking, other, pod, policy,
                                     policy_limits, service)
from kfab.objects.validation.field import nonnegative
from kfab.objects.validation.meta import as_dict, validate_object_meta, validate_object_meta_update

# How each kind's metadata.name is checked (the ValidateXName functions of pkg/apis/*/validation).
_NAME_RULES: dict[str, Callable[[str, bool], list[str]]] = {
    "Namespace": names.name_is_dns_label,
    "Service": names.name_is_dns1035_label,
    "StatefulSet": names.name_is_dns_label,
    "Role": names.name_is_path_segment,
    "RoleBinding": names.name_is_path_segment,
    "ClusterRole": names.name_is_path_segment,
    "ClusterRoleBinding": names.name_is_path_segment,
}

_CREATE: dict[str, Callable[[dict], list[Cause]]] = {
    "Pod": lambda obj: pod.validate_pod_spec(obj.get("spec"), "spec"),
    "Service": service.validate_service,
    "Namespace": core.validate_namespace,
    "ConfigMap": core.validate_config_map,
    "Secret": core.validate_secret,
    "PersistentVolumeClaim": core.validate_pvc,
    "PersistentVolume": core.validate_pv,
    "Node": core.validate_node,
    "Endpoints": core.validate_endpoints,
    "EndpointSlice": core.validate_endpoint_slice,
    "Event": other.validate_event,
    "Deployment": apps.validate_deployment,
    "ReplicaSet": apps.validate_replica_set,
    "StatefulSet": apps.validate_stateful_set,
    "Job": batch.validate_job,
    "CronJob": batch.validate_cron_job,
    "DaemonSet": apps.validate_daemon_set,
    "ControllerRevision": apps.validate_controller_revision,
    "PodDisruptionBudget": policy.validate_pod_disruption_budget,
    "Role": lambda obj: other.validate_rules(obj, namespaced=True),
    "ClusterRole": lambda obj: other.validate_rules(obj, namespaced=False),
    "RoleBinding": lambda obj: other.validate_binding(obj, cluster=False),
    "ClusterRoleBinding": lambda obj: other.validate_binding(obj, cluster=True),
    "Lease": other.validate_lease,
    "StorageClass": other.validate_storage_class,
    "Ingress": networking.validate_ingress,
    "IngressClass": networking.validate_ingress_class,
    "NetworkPolicy": networking.validate_network_policy,
    "CustomResourceDefinition": apiextensions.validate_crd,
    "HorizontalPodAutoscaler": autoscaling.validate_hpa,
    "ResourceQuota": policy_limits.validate_resource_quota,
    "LimitRange": policy_limits.validate_limit_range,
    "PriorityClass": policy_limits.validate_priority_class,
}

# Rules only a new object must follow.
_CREATE_ONLY: dict[str, Callable[[dict], list[Cause]]] = {
    "Ingress": networking.validate_ingress_create,
}

# Extra rules on update: what may not change (immutables).
_UPDATE: dict[str, Callable[[dict, dict], list[Cause]]] = {
    "Pod": lambda obj, old: pod.validate_pod_spec_update(obj.get("spec"), old.get("spec")),
    "Service": service.validate_service_update,
    "ConfigMap": core.validate_immutable_data_update,
    "Secret": core.validate_immutable_data_update,
    "PersistentVolumeClaim": core.validate_pvc_update,
    "PersistentVolume": core.validate_pv_update,
    "Deployment": apps.validate_selector_update,
    "ReplicaSet": apps.validate_selector_update,
    "StatefulSet": lambda obj, old: (apps.validate_selector_update(obj, old)
                                     + apps.validate_stateful_set_update(obj, old)),
    "DaemonSet": apps.validate_selector_update,
    "ControllerRevision": apps.validate_controller_revision_update,
    "Job": batch.validate_job_update,
    "RoleBinding": other.validate_binding_update,
    "ClusterRoleBinding": other.validate_binding_update,
    "StorageClass": other.validate_storage_class_update,
    "CustomResourceDefinition": apiextensions.validate_crd_update,
    "IngressClass": networking.validate_ingress_class_update,
    "PriorityClass": policy_limits.validate_priority_class_update,
}

# Virtual kinds answered but never stored carry no ObjectMeta to check.
_NO_META = {"SelfSubjectAccessReview"}


def name_rule(kind: str) -> Callable[[str, bool], list[str]]:
    return _NAME_RULES.get(kind, names.name_is_dns_subdomain)


def validate_create(rt: ResourceType, obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    if rt.kind not in _NO_META:
        causes += validate_object_meta(obj.get("metadata"), rt.namespaced, name_rule(rt.kind))
    for checks in (_CREATE, _CREATE_ONLY):
        check = checks.get(rt.kind) if rt.custom is None else None  # a CRD's kinds have their schema only
        if check:
            causes += check(obj)
    return causes


def validate_update(rt: ResourceType, obj: dict, old: dict, subresource: str | None = None) -> list[Cause]:
    causes = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    if subresource == "status":
        return causes  # the API core keeps the spec of the stored object on status writes
    if subresource == "scale":
        return causes + nonnegative("spec.replicas", as_dict(obj.get("spec")).get("replicas"))
    if subresource:
        return causes
    if rt.custom is not None:
        return causes
    check = _CREATE.get(rt.kind)
    if check:
        causes += check(obj)
    immutables = _UPDATE.get(rt.kind)
    if immutables:
        causes += immutables(obj, old)
    return causes
