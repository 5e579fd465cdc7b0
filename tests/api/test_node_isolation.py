"""Node authorizer and NodeRestriction, through real kubectl as node identities (system:node:<name> in
system:nodes): a node reads only what its pods use and writes only its own Node, Lease and pods' status."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config

from tests.api.conftest import run_kubectl, start_server, stop_server, user_kubeconfig
from tests.waiting import wait_until

NS = "apps"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-nodes")
    proc, server = start_server(data_dir, "--disable-controllers")  # no scheduler/GC moving the pods
    out = tmp_path_factory.mktemp("kubeconfigs")
    try:
        yield {"admin": server.kubeconfig,
               "n1": user_kubeconfig(data_dir, out, "system:node:n1", "system:nodes"),
               "n2": user_kubeconfig(data_dir, out, "system:node:n2", "system:nodes"),
               "alice": user_kubeconfig(data_dir, out, "alice")}
    finally:
        stop_server(proc)


def kubectl(cluster, who: str, *args: str, input: str | None = None):
    return run_kubectl(cluster[who], *args, input=input)


def apply(cluster, *objects: dict) -> None:
    result = kubectl(cluster, "admin", "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                             "items": list(objects)}))
    assert result.returncode == 0, result.stderr


def pod(name: str, node: str, secret: str, configmap: str, claim: str | None = None) -> dict:
    volumes = [{"name": "cfg", "configMap": {"name": configmap}}]
    if claim:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"nodeName": node, "volumes": volumes,
                     "containers": [{"name": "c", "image": "busybox",
                                     "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": secret,
                                                                                           "key": "pw"}}}]}]}}


@pytest.fixture(scope="module")
def objects(cluster):
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    # no controller-manager here: the ServiceAccount admission needs the namespace's default account
    apply(cluster, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NS}})
    secrets = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": NS},
                "stringData": {"pw": n}} for n in ("s1", "s2", "unused")]
    configmaps = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": NS}, "data": {}}
                  for n in ("c1", "c2")]
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                       "hostPath": {"path": "/tmp/pv1"}, "storageClassName": "manual"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data1", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                      "storageClassName": "manual", "volumeName": "pv1"}}
    apply(cluster, *secrets, *configmaps, volume, claim,
          pod("p1", "n1", "s1", "c1", "data1"), pod("p2", "n2", "s2", "c2"))


def can_get(cluster, who: str, *what: str) -> bool:
    return kubectl(cluster, who, "get", *what, "-o", "name").returncode == 0


def test_a_node_reads_only_what_its_pods_use(cluster, objects):
    wait_until("n1 may read its pod's Secret", lambda: can_get(cluster, "n1", "secret", "s1", "-n", NS))
    assert can_get(cluster, "n1", "configmap", "c1", "-n", NS)
    assert can_get(cluster, "n1", "pvc", "data1", "-n", NS)
    assert can_get(cluster, "n1", "pv", "pv1")
    assert not can_get(cluster, "n2", "pv", "pv1")
    denied = kubectl(cluster, "n1", "get", "secret", "s2", "-n", NS)
    assert denied.returncode != 0
    assert ('secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the '
            "namespace \"apps\": no relationship found between node 'n1' and this object") in denied.stderr
    assert not can_get(cluster, "n1", "secret", "unused", "-n", NS)
    assert not can_get(cluster, "n1", "configmap", "c2", "-n", NS)
    assert can_get(cluster, "n2", "secret", "s2", "-n", NS)
    listed = kubectl(cluster, "n1", "get", "secrets", "-n", NS)
    assert listed.returncode != 0 and "No Object name found" in listed.stderr
    # a user is not a node: RBAC alone decides (alice has no role)
    assert not can_get(cluster, "alice", "secret", "s1", "-n", NS)


def test_the_graph_follows_pods_moving_away(cluster, objects):
    apply(cluster, pod("p3", "n1", "unused", "c2"))
    wait_until("a new pod's Secret becomes readable", lambda: can_get(cluster, "n1", "secret", "unused", "-n", NS))
    assert kubectl(cluster, "admin", "delete", "pod", "p3", "-n", NS, "--grace-period=0", "--force").returncode == 0
    wait_until("the Secret closed again", lambda: not can_get(cluster, "n1", "secret", "unused", "-n", NS))
    assert can_get(cluster, "n1", "secret", "s1", "-n", NS), "p1's Secret is still p1's"


def test_a_node_writes_only_its_own_node_and_labels_within_bounds(cluster, objects):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    assert kubectl(cluster, "n1", "create", "-f", "-", input=json.dumps(node)).returncode == 0
    other = dict(node, metadata={"name": "n9"})
    refused = kubectl(cluster, "n1", "create", "-f", "-", input=json.dumps(other))
    assert 'nodes "n9" is forbidden: node "n1" is not allowed to modify node "n9"' in refused.stderr
    refused = kubectl(cluster, "n1", "label", "node", "n1", "node-restriction.kubernetes.io/trusted=yes")
    assert ('nodes "n1" is forbidden: node "n1" is not allowed to modify labels: '
            "node-restriction.kubernetes.io/trusted") in refused.stderr
    refused = kubectl(cluster, "n1", "label", "node", "n1", "node-role.kubernetes.io/control-plane=")
    assert "is not allowed to modify labels: node-role.kubernetes.io/control-plane" in refused.stderr
    assert kubectl(cluster, "n1", "label", "node", "n1", "example.com/rack=r1").returncode == 0
    assert kubectl(cluster, "n1", "label", "node", "n1", "topology.kubernetes.io/zone=z1").returncode == 0
    refused = kubectl(cluster, "n1", "taint", "node", "n1", "dedicated=me:NoSchedule")
    assert 'node "n1" is not allowed to modify taints' in refused.stderr
    # the admin still may
    allowed = kubectl(cluster, "admin", "label", "node", "n1", "node-restriction.kubernetes.io/trusted=yes")
    assert allowed.returncode == 0


def test_a_node_creates_only_mirror_pods_and_updates_only_its_pods_status(cluster, objects):
    plain = pod("sneaky", "n1", "s1", "c1")
    refused = kubectl(cluster, "n1", "create", "-f", "-", input=json.dumps(plain))
    assert ('pods "sneaky" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can '
            "only create mirror pods") in refused.stderr
    # as the node agent does it (kubectl patch --subresource would first GET pods/status, which nodes may not)
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster["n1"])))
    with pytest.raises(client.ApiException) as refused_status:
        api.patch_namespaced_pod_status("p2", NS, {"status": {"phase": "Failed"}})
    assert refused_status.value.status == 403
    assert json.loads(refused_status.value.body)["message"] == (
        'pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself')
    assert api.patch_namespaced_pod_status("p1", NS, {"status": {"phase": "Running"}}).status.phase == "Running"
    refused = kubectl(cluster, "n1", "delete", "pod", "p2", "-n", NS, "--grace-period=0", "--force")
    assert 'node "n1" can only delete pods with spec.nodeName set to itself' in refused.stderr


def test_a_node_keeps_only_its_own_lease(cluster, objects):
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "n1"}}
    assert kubectl(cluster, "n1", "apply", "-f", "-", input=json.dumps(lease)).returncode == 0
    theirs = dict(lease, metadata={"name": "n2", "namespace": "kube-node-lease"})
    refused = kubectl(cluster, "n1", "apply", "-f", "-", input=json.dumps(theirs))
    assert "can only access node lease with the same name as the requesting node" in refused.stderr
