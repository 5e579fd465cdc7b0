"""The metrics.k8s.io/v1beta1 definitions metrics-server publishes (k8s.io/metrics), which the published
Kubernetes schemas kfab reads (kubernetes-validate) do not carry: NodeMetrics, PodMetrics and their lists."""

from __future__ import annotations

PACKAGE = "io.k8s.metrics.pkg.apis.metrics.v1beta1."
_META = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
         "description": "Standard object's metadata."}
_LIST_META = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
              "description": "Standard list metadata."}
_TYPE_META = {
    "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation "
                                                    "of an object."},
    "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object "
                                              "represents."},
}
_USAGE = {"type": "object", "description": "The memory and CPU usage.",
          "additionalProperties": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.api.resource.Quantity"}}
_WHEN = {
    "timestamp": {"type": "string", "format": "date-time", "description": "The following fields define time "
                  "interval from which metrics were collected from the interval [Timestamp-Window, Timestamp]."},
    "window": {"type": "string", "description": "The length of the interval the usage was measured over."},
}


def _gvk(kind: str) -> list[dict]:
    return [{"group": "metrics.k8s.io", "kind": kind, "version": "v1beta1"}]


def _list(kind: str) -> dict:
    return {"description": f"{kind}List is a list of {kind}.", "type": "object", "required": ["items"],
            "properties": {**_TYPE_META, "metadata": _LIST_META,
                           "items": {"type": "array", "description": f"List of {kind} objects.",
                                     "items": {"$ref": f"#/$defs/{PACKAGE}{kind}"}}},
            "x-kubernetes-group-version-kind": _gvk(f"{kind}List")}


DEFINITIONS: dict[str, dict] = {
    PACKAGE + "NodeMetrics": {
        "description": "NodeMetrics sets resource usage metrics of a node.", "type": "object",
        "required": ["timestamp", "window", "usage"],
        "properties": {**_TYPE_META, "metadata": _META, **_WHEN, "usage": _USAGE},
        "x-kubernetes-group-version-kind": _gvk("NodeMetrics")},
    PACKAGE + "NodeMetricsList": _list("NodeMetrics"),
    PACKAGE + "PodMetrics": {
        "description": "PodMetrics sets resource usage metrics of a pod.", "type": "object",
        "required": ["timestamp", "window", "containers"],
        "properties": {**_TYPE_META, "metadata": _META, **_WHEN, "containers": {
            "type": "array", "description": "Metrics for all containers are collected within the same time window.",
            "items": {"$ref": f"#/$defs/{PACKAGE}ContainerMetrics"}}},
        "x-kubernetes-group-version-kind": _gvk("PodMetrics")},
    PACKAGE + "PodMetricsList": _list("PodMetrics"),
    PACKAGE + "ContainerMetrics": {
        "description": "ContainerMetrics sets resource usage metrics of a container.", "type": "object",
        "required": ["name", "usage"],
        "properties": {"name": {"type": "string", "description": "Container name corresponding to the one from "
                                                                 "pod.spec.containers."}, "usage": _USAGE}},
}
