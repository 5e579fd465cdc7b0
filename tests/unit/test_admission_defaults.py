"""Realistic manifests from the Kubernetes docs get the defaults kube-apiserver gives them."""

import base64
import copy

import pytest

from kfab.objects.defaults import apply_defaults
from kfab.objects.defaults.pod import image_pull_policy
from kfab.objects.registry import REGISTRY

DEPLOYMENT = REGISTRY.by_kind("apps/v1", "Deployment")
STATEFULSET = REGISTRY.by_kind("apps/v1", "StatefulSet")
SERVICE = REGISTRY.by_kind("v1", "Service")
POD = REGISTRY.by_kind("v1", "Pod")

NGINX_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
             "template": {"metadata": {"labels": {"app": "nginx"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                   "ports": [{"containerPort": 80}]}]}}},
}

WEB_STATEFULSET = {
    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "nginx"}}, "serviceName": "nginx", "replicas": 3,
             "minReadySeconds": 10,
             "template": {"metadata": {"labels": {"app": "nginx"}},
                          "spec": {"terminationGracePeriodSeconds": 10,
                                   "containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                                                   "ports": [{"containerPort": 80, "name": "web"}],
                                                   "volumeMounts": [{"name": "www",
                                                                     "mountPath": "/usr/share/nginx/html"}]}]}},
             "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                       "spec": {"accessModes": ["ReadWriteOnce"],
                                                "storageClassName": "my-storage-class",
                                                "resources": {"requests": {"storage": "1Gi"}}}}]},
}


def defaulted(rt, obj, operation="CREATE"):
    return apply_defaults(rt, copy.deepcopy(obj), operation)


def test_nginx_deployment_defaults():
    spec = defaulted(DEPLOYMENT, NGINX_DEPLOYMENT)["spec"]
    assert spec["replicas"] == 3  # given values are kept
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == ("Always", "ClusterFirst",
                                                                              "default-scheduler")
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # Pod admission plugins act on Pods, not on templates.
    assert "tolerations" not in pod and "serviceAccountName" not in pod and "priority" not in pod


def test_deployment_without_replicas_gets_one_and_recreate_gets_no_rolling_update():
    obj = copy.deepcopy(NGINX_DEPLOYMENT)
    del obj["spec"]["replicas"]
    obj["spec"]["strategy"] = {"type": "Recreate"}
    spec = defaulted(DEPLOYMENT, obj)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_statefulset_defaults():
    spec = defaulted(STATEFULSET, WEB_STATEFULSET)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 10
    assert spec["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_service_defaults():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "my-service", "namespace": "default"},
           "spec": {"selector": {"app.kubernetes.io/name": "MyApp"},
                    "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}, {"name": "metrics", "port": 9090}]}}
    spec = defaulted(SERVICE, svc)["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"][1] == {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090}
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec


def test_nodeport_and_loadbalancer_services_get_external_policy():
    svc = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    spec = defaulted(SERVICE, svc)["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True


def test_headless_service_without_selector_asks_for_every_family():
    spec = defaulted(SERVICE, {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}})["spec"]
    assert spec["clusterIPs"] == ["None"]
    assert spec["ipFamilyPolicy"] == "RequireDualStack"


def test_pod_gets_admission_defaults():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "app", "image": "busybox", "resources": {"limits": {"cpu": "500m"}},
         "livenessProbe": {"httpGet": {"port": 8080}},
         "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
        "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "game-demo"}}]}}
    spec = defaulted(POD, pod)["spec"]
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"]["requests"] == {"cpu": "500m"}
    assert c["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["volumes"][0] == {"name": "scratch", "emptyDir": {}}
    assert spec["volumes"][1]["configMap"]["defaultMode"] == 420
    assert spec["serviceAccountName"] == "default" and spec["priority"] == 0
    assert spec["enableServiceLinks"] is True
    assert "tolerations" not in spec   # the DefaultTolerationSeconds admission plugin's (test_toleration_admission)


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("registry.local:5000/app", "Always"), ("registry.local:5000/app:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent")])
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


def test_namespace_secret_pv_pvc_defaults():
    ns = defaulted(REGISTRY.by_kind("v1", "Namespace"), {"metadata": {"name": "team-a"}})
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    secret = defaulted(REGISTRY.by_kind("v1", "Secret"), {"metadata": {"name": "s"}, "stringData": {"password": "pw"}})
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert base64.b64decode(secret["data"]["password"]) == b"pw"
    pv = defaulted(REGISTRY.by_kind("v1", "PersistentVolume"),
                   {"metadata": {"name": "pv"}, "spec": {"nfs": {"server": "nfs", "path": "/x"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["volumeMode"] == "Filesystem"
    pvc = defaulted(REGISTRY.by_kind("v1", "PersistentVolumeClaim"), {"metadata": {"name": "c"}, "spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    binding = defaulted(REGISTRY.by_kind("rbac.authorization.k8s.io/v1", "RoleBinding"),
                        {"subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "x"}]})
    assert binding["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    assert "apiGroup" not in binding["subjects"][1]


@pytest.mark.parametrize("resources,qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),  # requests default to the limits
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable")])
def test_pod_qos_class(resources, qos):
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1", "resources": resources}]}}
    assert defaulted(POD, pod)["status"]["qosClass"] == qos


def test_namespace_finalizer_is_added_on_create_only():
    ns = REGISTRY.by_kind("v1", "Namespace")
    finalized = {"metadata": {"name": "going"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
    after = defaulted(ns, finalized, "UPDATE")
    assert after["spec"]["finalizers"] == [] and after["status"]["phase"] == "Terminating"
