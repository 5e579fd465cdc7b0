"""Server-side Tables: the columns and cells `kubectl get` prints, as kube-apiserver's printers make them."""

from datetime import datetime, timedelta, timezone

import pytest

from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY
from kfab.objects.cells import format_selector, human_duration, selector_string
from kfab.objects.tables import to_table

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=timezone.utc)


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(api_version, kind):
    return REGISTRY.by_kind(api_version, kind)


def cells(api_version, kind, obj):
    return to_table(rt(api_version, kind), [obj], now=NOW)["rows"][0]["cells"]


def headers(api_version, kind, wide=False):
    table = to_table(rt(api_version, kind), [], now=NOW)
    return [c["name"].upper() for c in table["columnDefinitions"] if wide or c["priority"] == 0]


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (5, "5s"), (119, "119s"), (182, "3m2s"), (600, "10m"), (3 * 3600 + 5 * 60, "3h5m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400, "2d"), (3 * 86400 + 5 * 3600, "3d5h"), (400 * 86400, "400d"),
    (3 * 365 * 86400 + 20 * 86400, "3y20d"), (9 * 365 * 86400, "9y"), (-1, "0s"), (-5, "<invalid>"),
])
def test_age_reads_like_kubectl(seconds, text):
    assert human_duration(seconds) == text


def pod(phase="Running", statuses=(), deleting=False, init=(), init_statuses=(), conditions=(), **status):
    containers = [{"name": s["name"], "image": "nginx"} for s in statuses] or [{"name": "app", "image": "nginx"}]
    meta = {"name": "web-0", "namespace": "default", "creationTimestamp": ago(minutes=3, seconds=2)}
    if deleting:
        meta["deletionTimestamp"] = ago(seconds=1)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": containers, "initContainers": list(init), "nodeName": "node-1"},
            "status": {"phase": phase, "containerStatuses": list(statuses),
                       "initContainerStatuses": list(init_statuses), "conditions": list(conditions), **status}}


def running(name="app", ready=True, restarts=0):
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(minutes=1)}}}


def waiting(reason, name="app", restarts=0, last_finished=None):
    status = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if last_finished:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return status


def terminated(reason="", exit_code=0, name="app"):
    state = {"exitCode": exit_code, "finishedAt": ago(seconds=10)}
    if reason:
        state["reason"] = reason
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def test_pod_columns_and_wide_columns():
    assert headers("v1", "Pod") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert headers("v1", "Pod", wide=True)[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]


@pytest.mark.parametrize("obj,status", [
    (pod("Pending", statuses=()), "Pending"),
    (pod("Pending", statuses=[waiting("ContainerCreating")]), "ContainerCreating"),
    (pod("Running", statuses=[running()]), "Running"),
    (pod("Succeeded", statuses=[terminated("Completed")]), "Completed"),
    (pod("Failed", statuses=[terminated(exit_code=2)]), "ExitCode:2"),
    (pod("Running", statuses=[waiting("CrashLoopBackOff", restarts=4)]), "CrashLoopBackOff"),
    (pod("Pending", statuses=[waiting("ErrImagePull")]), "ErrImagePull"),
    (pod("Running", statuses=[running()], deleting=True), "Terminating"),
    (pod("Succeeded", statuses=[terminated("Completed")], deleting=True), "Completed"),
    (pod("Pending", init=[{"name": "setup", "image": "busybox"}],
         init_statuses=[{"name": "setup", "ready": False, "restartCount": 0,
                         "state": {"waiting": {"reason": "PodInitializing"}}}]), "Init:0/1"),
    (pod("Pending", init=[{"name": "setup", "image": "busybox"}],
         init_statuses=[terminated(exit_code=1, name="setup")]), "Init:ExitCode:1"),
    (pod("Failed", reason="Evicted", statuses=[terminated(exit_code=137)]), "ExitCode:137"),
    (pod("Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     "SchedulingGated"),
])
def test_pod_status_follows_kubectl_rules(obj, status):
    assert cells("v1", "Pod", obj)[2] == status


def test_pod_ready_restarts_age_and_wide_cells():
    obj = pod("Running", statuses=[running("web"), waiting("CrashLoopBackOff", "sidecar", restarts=3,
                                                             last_finished=ago(seconds=30))],
              podIPs=[{"ip": "10.244.1.4"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/ready"}]
    obj["status"]["conditions"] = [{"type": "example.com/ready", "status": "True"}]
    assert cells("v1", "Pod", obj) == ["web-0", "1/2", "CrashLoopBackOff", "3 (30s ago)", "3m2s",
                                       "10.244.1.4", "node-1", "<none>", "1/1"]


def test_completed_pod_with_a_running_container_shows_running_or_not_ready():
    obj = pod("Running", statuses=[terminated("Completed", name="a"), running("b")],
              conditions=[{"type": "Ready", "status": "False"}])
    assert cells("v1", "Pod", obj)[1:3] == ["1/2", "NotReady"]


def test_finished_pods_carry_the_completed_row_condition():
    row = to_table(rt("v1", "Pod"), [pod("Succeeded", statuses=[terminated("Completed")])], now=NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]


def test_table_shape_and_include_object():
    obj = pod()
    obj["metadata"]["resourceVersion"] = "41"
    table = to_table(rt("v1", "Pod"), [obj], now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "41"}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": table["columnDefinitions"][0]["description"]}
    assert table["columnDefinitions"][0]["description"].startswith("Name must be unique within a namespace.")
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": obj["metadata"]}
    assert to_table(rt("v1", "Pod"), [obj], "Object", now=NOW)["rows"][0]["object"] is obj
    assert "object" not in to_table(rt("v1", "Pod"), [obj], "None", now=NOW)["rows"][0]
    listed = to_table(rt("v1", "Pod"), [obj, obj], list_meta={"resourceVersion": "99", "continue": "abc",
                                                              "selfLink": "x"}, now=NOW)
    assert listed["metadata"] == {"resourceVersion": "99", "continue": "abc"}
    with pytest.raises(APIError) as bad:
        to_table(rt("v1", "Pod"), [obj], "Everything")
    assert bad.value.code == 400


NGINX = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "creationTimestamp": ago(days=2, hours=3)},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx", "tier": "web"},
                                         "matchExpressions": [{"key": "env", "operator": "In",
                                                               "values": ["prod", "dev"]}]},
             "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"},
                                                  {"name": "log", "image": "busybox"}]}}},
    "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
}


def test_deployment_columns_and_cells():
    assert headers("apps/v1", "Deployment") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert headers("apps/v1", "Deployment", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert cells("apps/v1", "Deployment", NGINX) == [
        "nginx-deployment", "2/3", 3, 2, "2d3h", "nginx,log", "nginx:1.14.2,busybox",
        "app=nginx,env in (dev,prod),tier=web"]


def test_replicaset_and_statefulset_cells():
    rs = dict(NGINX, kind="ReplicaSet", metadata={"name": "nginx-7d9", "creationTimestamp": ago(seconds=45)})
    assert headers("apps/v1", "ReplicaSet") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert cells("apps/v1", "ReplicaSet", rs)[:5] == ["nginx-7d9", 3, 3, 2, "45s"]
    sts = dict(NGINX, kind="StatefulSet", metadata={"name": "web", "creationTimestamp": ago(minutes=15)})
    assert headers("apps/v1", "StatefulSet") == ["NAME", "READY", "AGE"]
    assert cells("apps/v1", "StatefulSet", sts) == ["web", "2/3", "15m", "nginx,log", "nginx:1.14.2,busybox"]


def test_label_selectors_print_like_kubectl():
    assert selector_string({"matchExpressions": [{"key": "b", "operator": "Exists"},
                                                 {"key": "a", "operator": "DoesNotExist"},
                                                 {"key": "c", "operator": "NotIn", "values": ["y", "x"]}]}) \
        == "!a,b,c notin (x,y)"
    assert format_selector(None) == "<none>" and selector_string({}) == ""


def service(**spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "creationTimestamp": ago(hours=5)},
            "spec": spec}


def test_service_columns_and_cells():
    assert headers("v1", "Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert cells("v1", "Service", service(type="ClusterIP", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"],
                                          ports=[{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                                          selector={"k8s-app": "kube-dns"})) \
        == ["web", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "5h", "k8s-app=kube-dns"]
    assert cells("v1", "Service", service(type="NodePort", clusterIP="10.96.3.4",
                                          ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}]))[1:5] \
        == ["NodePort", "10.96.3.4", "<none>", "80:30080/TCP"]
    assert cells("v1", "Service", service(type="LoadBalancer", clusterIP="None", ports=[]))[2:5] \
        == ["None", "<pending>", "<none>"]
    assert cells("v1", "Service", service(type="ExternalName", externalName="db.example.com"))[3] == "db.example.com"


def test_node_columns_and_cells():
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "worker-1", "creationTimestamp": ago(days=10),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "10.88.0.11"},
                                     {"type": "Hostname", "address": "worker-1"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0-kfab", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0-26-amd64", "containerRuntimeVersion": "podman://4.3.1"}}}
    assert headers("v1", "Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert cells("v1", "Node", node) == ["worker-1", "NotReady,SchedulingDisabled", "control-plane,worker", "10d",
                                         "v1.37.0-kfab", "10.88.0.11", "<none>", "Debian GNU/Linux 12 (bookworm)",
                                         "6.1.0-26-amd64", "podman://4.3.1"]


def test_namespace_configmap_secret_serviceaccount_cells():
    ns = {"metadata": {"name": "kube-system", "creationTimestamp": ago(minutes=90)}, "status": {"phase": "Active"}}
    assert headers("v1", "Namespace") == ["NAME", "STATUS", "AGE"]
    assert cells("v1", "Namespace", ns) == ["kube-system", "Active", "90m"]
    cm = {"metadata": {"name": "game-demo", "creationTimestamp": ago(seconds=7)},
          "data": {"player_initial_lives": "3", "ui_properties_file_name": "x"}, "binaryData": {"b": "AA=="}}
    assert cells("v1", "ConfigMap", cm) == ["game-demo", 3, "7s"]
    secret = {"metadata": {"name": "tls", "creationTimestamp": ago(seconds=7)}, "type": "kubernetes.io/tls",
              "data": {"tls.crt": "", "tls.key": ""}}
    assert headers("v1", "Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    assert cells("v1", "Secret", secret) == ["tls", "kubernetes.io/tls", 2, "7s"]
    assert cells("v1", "ServiceAccount", {"metadata": {"name": "default"}})[:2] == ["default", 0]


def test_endpoints_and_endpointslices_show_the_first_three_addresses():
    ep = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=3)},
          "subsets": [{"addresses": [{"ip": f"10.244.1.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}]}
    assert cells("v1", "Endpoints", ep) == ["web", "10.244.1.1:80,10.244.1.2:80,10.244.1.3:80 + 2 more...", "3s"]
    eps = {"metadata": {"name": "web-abc12"}, "addressType": "IPv4", "ports": [{"name": "http", "port": 80}],
           "endpoints": [{"addresses": ["10.244.1.1"]}, {"addresses": ["10.244.2.1"]}]}
    assert cells("discovery.k8s.io/v1", "EndpointSlice", eps)[:4] == ["web-abc12", "IPv4", "80",
                                                                       "10.244.1.1,10.244.2.1"]


def test_events_show_last_seen_type_reason_object_message():
    event = {"metadata": {"name": "web-0.17f"}, "type": "Warning", "reason": "BackOff",
             "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
             "source": {"component": "kubelet", "host": "worker-1"},
             "message": "Back-off restarting failed container\n",
             "firstTimestamp": ago(minutes=5), "lastTimestamp": ago(seconds=20), "count": 7}
    assert headers("v1", "Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert cells("v1", "Event", event) == ["20s", "Warning", "BackOff", "pod/web-0", "spec.containers{app}",
                                           "kubelet, worker-1", "Back-off restarting failed container", "5m", 7,
                                           "web-0.17f"]


def test_storage_cells():
    pv = {"metadata": {"name": "pv-nfs-1", "creationTimestamp": ago(hours=1)},
          "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "nfs",
                   "claimRef": {"namespace": "default", "name": "data"}},
          "status": {"phase": "Bound"}}
    assert cells("v1", "PersistentVolume", pv) == ["pv-nfs-1", "5Gi", "RWO,RWX", "Retain", "Bound", "default/data",
                                                   "nfs", "<unset>", "", "60m", "<unset>"]
    pvc = {"metadata": {"name": "data", "creationTimestamp": ago(hours=1)},
           "spec": {"volumeName": "pv-nfs-1", "storageClassName": "nfs", "resources": {"requests": {"storage": "1Gi"}}},
           "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"]}}
    assert headers("v1", "PersistentVolumeClaim") == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                                                      "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert cells("v1", "PersistentVolumeClaim", pvc)[:5] == ["data", "Bound", "pv-nfs-1", "5Gi", "RWX"]
    sc = {"metadata": {"name": "nfs", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "kfab.io/nfs"}
    assert cells("storage.k8s.io/v1", "StorageClass", sc)[:5] == ["nfs (default)", "kfab.io/nfs", "Delete",
                                                                  "Immediate", False]


def test_leases_bindings_and_revisions():
    lease = {"metadata": {"name": "kfab-scheduler"}, "spec": {"holderIdentity": "cp-1_4f2a"}}
    assert cells("coordination.k8s.io/v1", "Lease", lease)[:2] == ["kfab-scheduler", "cp-1_4f2a"]
    binding = {"metadata": {"name": "read-pods"}, "roleRef": {"kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
                            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
                            {"kind": "User", "name": "joe"}]}
    assert headers("rbac.authorization.k8s.io/v1", "RoleBinding", wide=True) == [
        "NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert cells("rbac.authorization.k8s.io/v1", "RoleBinding", binding)[:2] == ["read-pods", "Role/pod-reader"]
    assert cells("rbac.authorization.k8s.io/v1", "RoleBinding", binding)[3:] == ["jane, joe", "devs", "build/ci"]
    revision = {"metadata": {"name": "web-6d4f", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": True}]},
        "revision": 2}
    assert cells("apps/v1", "ControllerRevision", revision)[:3] == ["web-6d4f", "statefulset.apps/web", 2]


def test_kinds_without_a_printer_get_name_and_created_at():
    role = {"metadata": {"name": "pod-reader", "creationTimestamp": "2026-11-27T19:00:00Z"}}
    table = to_table(rt("rbac.authorization.k8s.io/v1", "Role"), [role], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Created At", "date")]
    assert table["rows"][0]["cells"] == ["pod-reader", "2026-11-27T19:00:00Z"]


def test_every_kind_renders_a_sparse_object_with_one_cell_per_column():
    for resource in REGISTRY.types:
        table = to_table(resource, [{"metadata": {"name": "x"}}], now=NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), resource.kind
