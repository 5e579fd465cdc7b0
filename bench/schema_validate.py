"""Per-object cost of schema validation (runs on every write): prints microseconds per object per kind;
also the cost of a 1000-row server-side Table and of building the OpenAPI documents (once per process).

Usage: .venv/bin/python bench/schema_validate.py [iterations]
"""

import sys
import time

from kfab.api.openapi import OpenAPIDocuments
from kfab.objects.tables import to_table

from kfab.objects.registry import REGISTRY
from kfab.objects.schema import unknown_fields, validate

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
                 "creationTimestamp": "2026-11-27T19:00:00Z", "resourceVersion": "7"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
             "template": {"metadata": {"labels": {"app": "nginx"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                   "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                                   "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                                                   "env": [{"name": f"E{i}", "value": "v"} for i in range(5)]}]}}},
}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}], "nodeName": "n1"},
       "status": {"phase": "Running", "podIP": "10.244.1.5",
                  "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "image": "busybox",
                                         "imageID": "", "state": {"running": {"startedAt": "2026-11-27T19:00:00Z"}}}]}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v" * 100}}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for obj in (DEPLOYMENT, POD, CONFIGMAP):
        rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
        start = time.perf_counter()
        validate(rt, obj)
        unknown_fields(rt, obj)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(n):
            validate(rt, obj)
            unknown_fields(rt, obj)
        per = (time.perf_counter() - start) / n
        print(f"{obj['kind']:<12} validate+unknown_fields: {per * 1e6:7.1f} us/object (first call incl. compile "
              f"{first * 1e3:.1f} ms)")


def other_figures() -> None:
    pods = REGISTRY.by_kind("v1", "Pod")
    start = time.perf_counter()
    to_table(pods, [POD] * 1000)
    print(f"to_table     1000 pods:               {(time.perf_counter() - start) * 1e3:7.1f} ms")
    documents = OpenAPIDocuments()
    start = time.perf_counter()
    documents.v3()
    middle = time.perf_counter()
    documents.v2()
    print(f"OpenAPI      v3 (all group-versions): {(middle - start) * 1e3:7.1f} ms; "
          f"v2 JSON + protobuf: {(time.perf_counter() - middle) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
    other_figures()
