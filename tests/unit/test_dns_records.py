"""Cluster DNS records: what each Kubernetes DNS name answers (pure, from Service/EndpointSlice dicts)."""

from __future__ import annotations

from kfab.dns.corefile import render_corefile
from kfab.dns.records import Records
from kfab.dns.resolvconf import pod_dns_options, pod_resolv_conf

D = "cluster.local."


def svc(name, cluster_ip="10.96.0.20", ports=None, ns="default", **spec):
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"clusterIP": cluster_ip, "ports": ports or [{"name": "http", "port": 80}], **spec}}


def slice_(service, endpoints, ports=None, ns="default"):
    return {"metadata": {"namespace": ns, "name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints}


def ep(ip, hostname=None, ready=True):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


def test_service_name_is_its_cluster_ip_in_any_case():
    r = Records.build([svc("web")], [slice_("web", [ep("10.244.1.5")])])
    assert r.lookup("web.default.svc.cluster.local.").a == ["10.96.0.20"]
    assert r.lookup("WEB.Default.SVC.cluster.local.").a == ["10.96.0.20"]


def test_headless_service_is_its_ready_pod_ips_and_statefulset_pods_have_names():
    r = Records.build([svc("db", cluster_ip="None", ports=[{"name": "pg", "port": 5432}])],
                      [slice_("db", [ep("10.244.1.5", "db-0"), ep("10.244.2.5", "db-1"),
                                     ep("10.244.2.9", "db-2", False)],
                              ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])])
    assert sorted(r.lookup("db.default.svc." + D).a) == ["10.244.1.5", "10.244.2.5"]
    assert r.lookup("db-0.db.default.svc." + D).a == ["10.244.1.5"]
    assert r.lookup("db-1.db.default.svc." + D).a == ["10.244.2.5"]
    assert r.lookup("db-2.db.default.svc." + D) is None      # not ready: no record
    srv = r.lookup("_pg._tcp.db.default.svc." + D).srv
    assert sorted((s.port, s.target) for s in srv) == [(5432, "db-0.db.default.svc." + D),
                                                       (5432, "db-1.db.default.svc." + D)]


def test_srv_records_for_named_ports_of_a_cluster_ip_service():
    r = Records.build([svc("web", ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"},
                                         {"port": 9000}])], [])
    assert [(s.port, s.target) for s in r.lookup("_http._tcp.web.default.svc." + D).srv] == \
        [(80, "web.default.svc." + D)]
    assert [s.port for s in r.lookup("_dns._udp.web.default.svc." + D).srv] == [53]
    assert r.lookup("_http._udp.web.default.svc." + D) is None


def test_unknown_names_are_nxdomain_and_parents_are_nodata():
    r = Records.build([svc("web")], [])
    assert r.lookup("nope.default.svc." + D) is None
    assert r.lookup("web.other.svc." + D) is None
    for parent in ("default.svc." + D, "svc." + D, D):
        found = r.lookup(parent)
        assert found is not None and not found.a and not found.srv


def test_external_name_is_a_cname_and_pod_names_are_their_ip():
    r = Records.build([{"metadata": {"namespace": "default", "name": "ext"},
                        "spec": {"type": "ExternalName", "externalName": "example.org"}}], [])
    assert r.lookup("ext.default.svc." + D).cname == "example.org."
    assert r.lookup("10-244-1-5.default.pod." + D).a == ["10.244.1.5"]
    assert r.lookup("10-244-1-500.default.pod." + D) is None


def test_other_cluster_domain():
    r = Records.build([svc("web")], [], domain="corp.example")
    assert r.in_domain("web.default.svc.corp.example.") and not r.in_domain("web.default.svc.cluster.local.")
    assert r.lookup("web.default.svc.corp.example.").a == ["10.96.0.20"]


def test_pod_resolv_conf():
    assert pod_resolv_conf("10.96.0.10", "shop") == ("nameserver 10.96.0.10\n"
                                                    "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                                                    "options ndots:5\n")
    assert pod_dns_options("10.96.0.10", "shop") == {
        "dns_server": ["10.96.0.10"], "dns_search": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "dns_option": ["ndots:5"]}


def test_corefile_serves_the_cluster_domain_and_forwards_the_rest():
    text = render_corefile("corp.example", "10.0.0.2", kubeconfig="/etc/kfab/dns.kubeconfig")
    assert "kubernetes corp.example in-addr.arpa ip6.arpa {" in text
    assert "kubeconfig /etc/kfab/dns.kubeconfig" in text
    assert "forward . 10.0.0.2 {" in text
    assert text.count("{") == text.count("}")
