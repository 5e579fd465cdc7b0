"""Kind defaults applied on create and update, as kube-apiserver's defaulting and default admission plugins do.

`apply_defaults(rt, obj, operation)` changes obj in place (and returns it). Pod-only admission defaults
(service account, priority, not-ready/unreachable tolerations) apply to Pods created directly, not to pod templates.
"""

from __future__ import annotations

from typing import Callable

from kfab.objects import limitrange
from kfab.objects.defaults import apps, autoscaling, batch, core, networking, pod
from kfab.objects.registry import ResourceType

_DEFAULTS: dict[str, Callable[[dict], None]] = {
    "HorizontalPodAutoscaler": autoscaling.default_hpa,
    "Pod": pod.default_pod,
    "Service": core.default_service,
    "Namespace": core.default_namespace,
    "PersistentVolumeClaim": core.default_pvc,
    "PersistentVolume": core.default_pv,
    "Secret": core.default_secret,
    "Endpoints": core.default_endpoints,
    "EndpointSlice": core.default_endpoint_slice,
    "Node": core.default_node,
    "RoleBinding": core.default_binding,
    "ClusterRoleBinding": core.default_binding,
    "StorageClass": core.default_storage_class,
    "Deployment": apps.default_deployment,
    "ReplicaSet": apps.default_replica_set,
    "StatefulSet": apps.default_stateful_set,
    "Job": batch.default_job,
    "CronJob": batch.default_cron_job,
    "DaemonSet": apps.default_daemon_set,
    "NetworkPolicy": networking.default_network_policy,
    "IngressClass": networking.default_ingress_class,
    "LimitRange": limitrange.default_limit_range,
    "PriorityClass": core.default_priority_class,
}


def apply_defaults(rt: ResourceType, obj: dict, operation: str = "CREATE") -> dict:
    if rt.kind == "Pod" and operation != "CREATE":
        pod.default_pod_spec(pod._d(obj, "spec"))  # admission plugins' additions are for new Pods only
        return obj
    if rt.kind == "Namespace" and operation != "CREATE":
        core.default_namespace(obj, create=False)
        return obj
    fill = _DEFAULTS.get(rt.kind)
    if fill:
        fill(obj)
    if rt.kind == "Job" and operation == "CREATE":
        batch.generate_job_selector(obj)  # needs the uid the API core has given the new object
    return obj
