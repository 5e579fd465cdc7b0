"""Every kind kfab serves goes through create, get, list, patch, replace and delete with the official client
(its DynamicClient, which finds each resource through discovery the way kubectl does)."""

from __future__ import annotations

import pytest
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from kfab.objects.registry import REGISTRY

POD_SPEC = {"schedulerName": "tests-bind-by-hand", "containers": [{"name": "c", "image": "busybox:1.36"}]}
TEMPLATE = {"metadata": {"labels": {"app": "k"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}

# A small valid object of each kind (name and namespace are filled in by the test).
SAMPLES = {
    "Namespace": {},
    "Node": {"spec": {"unschedulable": True}},
    "Pod": {"spec": POD_SPEC},
    "Service": {"spec": {"ports": [{"port": 80}], "selector": {"app": "k"}}},
    "Endpoints": {"subsets": [{"addresses": [{"ip": "10.244.0.9"}], "ports": [{"port": 80}]}]},
    "ConfigMap": {"data": {"k": "v"}},
    "Secret": {"stringData": {"k": "v"}},
    "Event": {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "NAMESPACE"}, "reason": "Tested",
              "message": "a test event", "type": "Normal", "source": {"component": "tests"}},
    "PersistentVolume": {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": "/tmp/kfab-every-kind"}, "storageClassName": "none"}},
    "PersistentVolumeClaim": {"spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "none",
                                       "resources": {"requests": {"storage": "1Gi"}}}},
    "ServiceAccount": {},
    "Deployment": {"spec": {"replicas": 0, "selector": {"matchLabels": {"app": "k"}}, "template": TEMPLATE}},
    "ReplicaSet": {"spec": {"replicas": 0, "selector": {"matchLabels": {"app": "k"}}, "template": TEMPLATE}},
    "StatefulSet": {"spec": {"replicas": 0, "serviceName": "k", "selector": {"matchLabels": {"app": "k"}},
                             "template": TEMPLATE}},
    "Job": {"spec": {"suspend": True, "template": {"spec": dict(TEMPLATE["spec"], restartPolicy="Never")}}},
    "CronJob": {"spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": {
        "spec": dict(TEMPLATE["spec"], restartPolicy="Never")}}}}},
    "DaemonSet": {"spec": {"selector": {"matchLabels": {"app": "k"}}, "template": dict(
        TEMPLATE, spec=dict(TEMPLATE["spec"], nodeSelector={"kfab-test": "none"}))}},
    "PodDisruptionBudget": {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "k"}}}},
    "ControllerRevision": {"revision": 1, "data": {"spec": {"template": TEMPLATE}}},
    "EndpointSlice": {"addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.9"]}],
                      "ports": [{"port": 80, "protocol": "TCP"}]},
    "StorageClass": {"provisioner": "example.com/none"},
    "Ingress": {"spec": {"rules": [{"host": "every.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
    "IngressClass": {"spec": {"controller": "example.com/none"}},
    "NetworkPolicy": {"spec": {"podSelector": {"matchLabels": {"app": "k"}}, "policyTypes": ["Ingress"]}},
    "Lease": {"spec": {"holderIdentity": "tests", "leaseDurationSeconds": 15}},
    "ResourceQuota": {"spec": {"hard": {"pods": "10"}}},
    "LimitRange": {"spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}},
    "PriorityClass": {"value": 1000},
    "CustomResourceDefinition": {"spec": {"group": "every.example.com", "scope": "Namespaced",
                                          "names": {"plural": "everythings", "kind": "EveryThing"},
                                          "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                                              "openAPIV3Schema": {"type": "object"}}}]}},
    "HorizontalPodAutoscaler": {"spec": {"maxReplicas": 2, "scaleTargetRef": {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "none"}}},
    "Role": {"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
    "RoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                    "subjects": [{"kind": "User", "name": "someone", "apiGroup": "rbac.authorization.k8s.io"}]},
    "ClusterRole": {"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                       "name": "view"},
                           "subjects": [{"kind": "Group", "name": "tests", "apiGroup": "rbac.authorization.k8s.io"}]},
}

# A CRD's name is <plural>.<group>.
NAMES = {"CustomResourceDefinition": "everythings.every.example.com"}

# Kinds clients create and read (the metrics API is read-only, the reviews are create-only).
STORED_KINDS = [rt for rt in REGISTRY.types if "get" in rt.verbs and "create" in rt.verbs]


def test_every_stored_kind_has_a_sample():
    assert {rt.kind for rt in STORED_KINDS} <= set(SAMPLES), "add a sample for the new kind"


@pytest.fixture(scope="module")
def dynamic(k8s):
    return DynamicClient(k8s)


def sample(rt, name: str, namespace: str) -> dict:
    import json
    body = json.loads(json.dumps(SAMPLES[rt.kind]).replace("NAMESPACE", namespace))
    meta = {"name": name, "labels": {"kfab-test": "every-kind"}}
    if rt.namespaced:
        meta["namespace"] = namespace
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, **body}


@pytest.mark.parametrize("rt", STORED_KINDS, ids=[rt.kind for rt in STORED_KINDS])
def test_crud(dynamic, namespace, rt):
    api = dynamic.resources.get(api_version=rt.api_version, kind=rt.kind)
    name = NAMES.get(rt.kind, f"every-{rt.kind.lower()}-{namespace}")
    ns = namespace if rt.namespaced else None
    made = api.create(body=sample(rt, name, namespace), namespace=ns)
    try:
        assert made.metadata.uid and made.metadata.resourceVersion
        assert api.get(name=name, namespace=ns).metadata.uid == made.metadata.uid
        listed = api.get(namespace=ns, label_selector="kfab-test=every-kind", field_selector=f"metadata.name={name}")
        assert [i.metadata.name for i in listed.items] == [name]

        patched = api.patch(name=name, namespace=ns, body={"metadata": {"annotations": {"step": "patched"}}},
                            content_type="application/merge-patch+json")
        assert patched.metadata.annotations["step"] == "patched"
        for _ in range(5):  # a controller may write in between (the PV binder sets status): read again, as clients do
            current = api.get(name=name, namespace=ns).to_dict()
            current["metadata"]["annotations"]["step"] = "replaced"
            try:
                replaced = api.replace(body=current, namespace=ns)
                break
            except ConflictError:
                continue
        assert replaced.metadata.annotations["step"] == "replaced"
        assert int(replaced.metadata.resourceVersion) > int(made.metadata.resourceVersion)
    finally:
        api.delete(name=name, namespace=ns)
    # gone, or held by a finalizer a controller will remove (PVC/PV protection, namespace emptying)
    try:
        left = api.get(name=name, namespace=ns)
    except NotFoundError:
        return
    assert left.metadata.deletionTimestamp is not None
