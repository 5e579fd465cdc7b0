"""Pure parts of the endpoints, StatefulSet, node lifecycle and PV binder controllers."""

from kfab.controllers.endpoints import resolve_target_port, service_backends, subsets_for
from kfab.controllers.endpointslice import desired_slices
from kfab.controllers.node_lifecycle import eviction_delay, wanted_taint_key
from kfab.objects.volumes import find_best_volume, volume_fits
from kfab.controllers.statefulset_util import new_claims, new_pod, ordinal_of, revision_data, revision_name

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def pod(name, ip, ready=True, port=8080, labels=None, deleting=False):
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": "n1",
                     "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SERVICE = {"metadata": {"name": "web", "namespace": "ns"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "h", "port": 80, "targetPort": "http"}]}}


def test_named_target_port_resolves_per_pod_and_by_protocol():
    assert resolve_target_port({"port": 80, "targetPort": "http"}, pod("a", "1.1.1.1", port=9000)) == 9000
    assert resolve_target_port({"port": 80, "targetPort": "http", "protocol": "UDP"}, pod("a", "1.1.1.1")) is None
    assert resolve_target_port({"port": 80}, pod("a", "1.1.1.1")) == 80
    assert resolve_target_port({"port": 80, "targetPort": 81}, pod("a", "1.1.1.1")) == 81


def test_subsets_split_ready_not_ready_and_by_port_list():
    pods = [pod("a", "10.0.0.2"), pod("b", "10.0.0.10", ready=False), pod("c", "10.0.0.3", port=9090),
            pod("gone", "10.0.0.4", deleting=True), dict(pod("noip", ""), status={"phase": "Pending"})]
    subsets = subsets_for(SERVICE, service_backends(SERVICE, pods))
    by_port = {s["ports"][0]["port"]: s for s in subsets}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["10.0.0.10"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.0.0.3"]
    assert by_port[8080]["ports"] == [{"name": "h", "port": 8080, "protocol": "TCP"}]


def test_slices_cap_endpoints_and_keep_one_placeholder():
    pods = [pod(f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    slices = desired_slices(SERVICE, service_backends(SERVICE, pods))
    assert [len(e) for _, e in slices] == [100, 100, 50]
    assert desired_slices(SERVICE, []) == [([], [])]


def test_statefulset_names_pods_and_claims():
    sts = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}, "apiVersion": "apps/v1", "kind": "StatefulSet",
           "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                              "spec": {"accessModes": ["ReadWriteOnce"]}}]}}
    p = new_pod(sts, sts["spec"]["template"], 2, "web-abc")
    assert p["metadata"]["name"] == "web-2"
    assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-2"
    assert p["metadata"]["labels"]["controller-revision-hash"] == "web-abc"
    assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == ("web-2", "nginx")
    assert p["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}]
    assert [c["metadata"]["name"] for c in new_claims(sts, 2)] == ["www-web-2"]
    assert new_claims(sts, 2)[0]["metadata"]["labels"] == {"app": "web"}
    assert ordinal_of(sts, {"metadata": {"name": "web-12"}}) == 12
    assert ordinal_of(sts, {"metadata": {"name": "webby-1"}}) is None
    other = dict(sts, spec=dict(sts["spec"], template={"spec": {"containers": [{"name": "d"}]}}))
    assert revision_name(sts, revision_data(sts)) != revision_name(other, revision_data(other))
    assert revision_name(sts, revision_data(sts)) == revision_name(sts, revision_data(sts))


def test_eviction_delay_is_the_least_toleration_seconds_as_upstreams_taint_manager():
    def with_tol(*tols):
        return {"spec": {"tolerations": list(tols)}}
    assert eviction_delay(with_tol(), UNREACHABLE) == 0                     # not tolerated: evicted at once
    admitted = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 3}                                      # DefaultTolerationSeconds' toleration
    assert eviction_delay(with_tol(admitted), UNREACHABLE) == 3
    assert eviction_delay(with_tol(dict(admitted, tolerationSeconds=300)), UNREACHABLE) == 300
    assert eviction_delay(with_tol(dict(admitted, tolerationSeconds=60), admitted), UNREACHABLE) == 3
    assert eviction_delay(with_tol(dict(admitted, tolerationSeconds=-5)), UNREACHABLE) == 0
    forever = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay(with_tol(forever), UNREACHABLE) is None
    assert eviction_delay(with_tol(forever, admitted), UNREACHABLE) == 3
    assert eviction_delay(with_tol({"operator": "Exists"}), UNREACHABLE) is None
    assert eviction_delay(with_tol({"key": "other", "operator": "Exists"}), UNREACHABLE) == 0


def test_lifecycle_taint_follows_the_ready_condition():
    def node(status):
        return {"status": {"conditions": [{"type": "Ready", "status": status}]}}
    assert wanted_taint_key(node("True"), lost=False) is None
    assert wanted_taint_key(node("True"), lost=True) == "node.kubernetes.io/unreachable"
    assert wanted_taint_key(node("False"), lost=False) == "node.kubernetes.io/not-ready"
    assert wanted_taint_key(node("Unknown"), lost=False) == "node.kubernetes.io/unreachable"


def pv(name, size, modes, sc="", labels=None, claim_ref=None, phase="Available"):
    spec = {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": sc}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


def claim(size, modes, sc="", selector=None, mode=None):
    spec = {"accessModes": modes, "resources": {"requests": {"storage": size}}, "storageClassName": sc}
    if selector:
        spec["selector"] = selector
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": "c", "namespace": "ns", "uid": "cu"}, "spec": spec}


def test_volume_matching_rules():
    assert volume_fits(pv("a", "1Gi", ["ReadWriteOnce"]), claim("1024Mi", ["ReadWriteOnce"]))
    assert not volume_fits(pv("a", "1Gi", ["ReadWriteOnce"]), claim("1.5Gi", ["ReadWriteOnce"]))
    assert not volume_fits(pv("a", "1Gi", ["ReadWriteOnce"]), claim("1Gi", ["ReadWriteMany"]))
    assert not volume_fits(pv("a", "1Gi", ["ReadWriteOnce"], sc="fast"), claim("1Gi", ["ReadWriteOnce"]))
    assert not volume_fits(pv("a", "1Gi", ["ReadWriteOnce"]), claim("1Gi", ["ReadWriteOnce"], mode="Block"))
    assert not volume_fits(pv("a", "1Gi", ["ReadWriteOnce"]),
                           claim("1Gi", ["ReadWriteOnce"], selector={"matchLabels": {"x": "y"}}))


def test_best_volume_is_the_smallest_fit_unless_one_is_pre_bound():
    vols = [pv("big", "10Gi", ["ReadWriteOnce"]), pv("small", "2Gi", ["ReadWriteOnce"]),
            pv("tiny", "500Mi", ["ReadWriteOnce"]), pv("taken", "1Gi", ["ReadWriteOnce"], phase="Bound",
                                                      claim_ref={"namespace": "ns", "name": "x", "uid": "xu"})]
    assert find_best_volume(claim("1Gi", ["ReadWriteOnce"]), vols)["metadata"]["name"] == "small"
    reserved = pv("reserved", "10Gi", ["ReadWriteOnce"], claim_ref={"namespace": "ns", "name": "c"})
    assert find_best_volume(claim("1Gi", ["ReadWriteOnce"]), vols + [reserved])["metadata"]["name"] == "reserved"
    assert find_best_volume(claim("100Gi", ["ReadWriteOnce"]), vols) is None
