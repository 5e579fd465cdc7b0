"""render_ruleset: Services + EndpointSlices -> the nftables table `ip kfab` (pure function)."""

from __future__ import annotations

import re

from kfab.proxy.rules import render_ruleset, service_ports


def service(name, cluster_ip="10.96.0.20", ports=None, namespace="default", type_="ClusterIP"):
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"type": type_, "clusterIP": cluster_ip,
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def slice_(service_name, endpoints, ports=None, namespace="default", suffix="abc"):
    return {"metadata": {"namespace": namespace, "name": f"{service_name}-{suffix}",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints}


def ep(ip, ready=True, terminating=False):
    conditions = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [ip], "conditions": conditions}


def test_only_ready_endpoints_get_traffic():
    slices = [slice_("web", [ep("10.244.1.5"), ep("10.244.2.5", ready=False), ep("10.244.2.6", terminating=True),
                             ep("10.244.3.7", ready=None)])]
    [sp] = service_ports([service("web")], slices)
    assert [(e.ip, e.port) for e in sp.endpoints] == [("10.244.1.5", 8080), ("10.244.3.7", 8080)]
    text = render_ruleset([service("web")], slices, [])
    assert "numgen random mod 2 map" in text
    assert "0 : 10.244.1.5 . 8080, 1 : 10.244.3.7 . 8080" in text
    assert "10.244.2.5" not in text and "10.244.2.6" not in text


def test_cluster_ip_and_node_port_map_to_the_same_service_chain():
    svc = service("web", type_="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    text = render_ruleset([svc], [slice_("web", [ep("10.244.1.5")])], ["10.79.0.11"])
    assert "10.96.0.20 . tcp . 80 : goto svc-default-web-tcp-80" in text
    assert "tcp . 30080 : goto svc-default-web-tcp-80" in text
    assert "ip daddr @node-ips meta l4proto . th dport vmap @service-nodeports" in text
    assert re.search(r"set node-ips \{\s+type ipv4_addr\s+elements = \{ 10.79.0.11 \}", text)


def test_node_ports_answer_on_every_local_address_without_node_ips():
    svc = service("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    text = render_ruleset([svc], [slice_("web", [ep("10.244.1.5")])], [])
    assert "fib daddr type local meta l4proto . th dport vmap @service-nodeports" in text


def test_service_without_ready_endpoints_is_rejected_not_dnated():
    svc = service("empty", type_="NodePort", ports=[{"port": 53, "protocol": "UDP", "nodePort": 30053}])
    text = render_ruleset([svc], [slice_("empty", [ep("10.244.1.5", ready=False)],
                                         ports=[{"port": 53, "protocol": "UDP"}])], [])
    assert re.search(r"set no-endpoint-services \{[^}]*elements = \{ 10.96.0.20 . udp . 53 \}", text)
    assert re.search(r"set no-endpoint-nodeports \{[^}]*elements = \{ udp . 30053 \}", text)
    assert "meta l4proto tcp reject with tcp reset" in text
    assert "reject with icmp type port-unreachable" in text
    assert "dnat ip to" not in text and "svc-default-empty" not in text


def test_ports_match_slices_by_name_and_protocol():
    svc = service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    slices = [slice_("dns", [ep("10.244.1.9")], ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                       {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}])]
    text = render_ruleset([svc], slices, [])
    assert "meta l4proto udp dnat ip to 10.244.1.9:5353" in text
    assert "meta l4proto tcp dnat ip to 10.244.1.9:5354" in text


def test_endpoints_of_other_services_and_namespaces_are_not_mixed_in():
    slices = [slice_("web", [ep("10.244.1.5")], namespace="other"), slice_("api", [ep("10.244.1.6")])]
    [sp] = service_ports([service("web")], slices)
    assert sp.endpoints == []


def test_endpoints_from_several_slices_are_merged_once():
    slices = [slice_("web", [ep("10.244.1.5"), ep("10.244.1.6")], suffix="a"),
              slice_("web", [ep("10.244.1.6"), ep("10.244.2.7")], suffix="b")]
    [sp] = service_ports([service("web")], slices)
    assert [e.ip for e in sp.endpoints] == ["10.244.1.5", "10.244.1.6", "10.244.2.7"]


def test_headless_external_name_and_sctp_services_are_not_proxied():
    services = [service("headless", cluster_ip="None"),
                {"metadata": {"namespace": "default", "name": "ext"},
                 "spec": {"type": "ExternalName", "externalName": "example.com"}},
                service("sctp", ports=[{"port": 9, "protocol": "SCTP"}])]
    assert service_ports(services, [slice_("headless", [ep("10.244.1.5")])]) == []


def test_off_cluster_sources_and_hairpin_are_masqueraded():
    text = render_ruleset([service("web")], [slice_("web", [ep("10.244.1.5")])], [],
                          cluster_cidr="10.244.0.0/16", local_pod_cidr="10.244.1.0/24")
    assert "ip saddr != 10.244.0.0/16 jump mark-for-masquerade" in text
    assert "10.244.1.5 . 10.244.1.5" in text
    assert "meta mark & 0x4000 == 0x4000 masquerade" in text
    assert "ct status dnat ip saddr 10.244.1.0/24 ip daddr 10.244.1.0/24 masquerade" in text
    # Pods reaching host-network endpoints (the API server's `kubernetes` Service) come back through this node.
    assert "ct status dnat ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade" in text


def test_the_ruleset_replaces_the_table_in_one_transaction():
    lines = render_ruleset([], [], []).splitlines()
    assert lines[:3] == ["table ip kfab {}", "delete table ip kfab", "table ip kfab {"]


def test_rendering_is_deterministic_whatever_the_input_order():
    services = [service(f"s{i}", cluster_ip=f"10.96.1.{i}") for i in range(5)]
    slices = [slice_(f"s{i}", [ep(f"10.244.{i}.{j}") for j in range(3, 0, -1)]) for i in range(5)]
    assert render_ruleset(services, slices, []) == render_ruleset(services[::-1], slices[::-1], [])


def lb_service(name, ips, policy="Cluster", ports=None):
    svc = service(name, type_="LoadBalancer", ports=ports or [
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053},
        {"name": "dns-udp", "port": 53, "protocol": "UDP", "nodePort": 30054}])
    svc["spec"]["externalTrafficPolicy"] = policy
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}
    return svc


def dns_slice(name, endpoints):
    return slice_(name, endpoints, ports=[{"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
                                          {"name": "dns-udp", "port": 5353, "protocol": "UDP"}])


def test_load_balancer_addresses_answer_the_service_port_on_tcp_and_udp():
    text = render_ruleset([lb_service("pihole", ["192.168.1.240"])], [dns_slice("pihole", [ep("10.244.1.5")])],
                          ["10.79.0.11"], cluster_cidr="10.244.0.0/16")
    assert "192.168.1.240 . tcp . 53 : goto svc-default-pihole-tcp-53" in text
    assert "192.168.1.240 . udp . 53 : goto svc-default-pihole-udp-53" in text


def test_load_balancer_without_endpoints_is_rejected():
    text = render_ruleset([lb_service("pihole", ["192.168.1.240"])], [dns_slice("pihole", [])], [])
    assert re.search(r"set no-endpoint-services \{[^}]+elements = \{[^}]*192.168.1.240 . udp . 53", text)


def test_external_traffic_policy_local_keeps_the_client_address_and_local_pods_only():
    here = dict(ep("10.244.1.5"), nodeName="w1")
    there = dict(ep("10.244.2.5"), nodeName="w2")
    svc = lb_service("web", ["10.79.0.11"], policy="Local", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    text = render_ruleset([svc], [slice_("web", [here, there])], ["10.79.0.11"], cluster_cidr="10.244.0.0/16",
                          node_name="w1")
    assert "10.79.0.11 . tcp . 80 : goto lb-local-default-web-tcp-80" in text
    local = re.search(r"chain lb-local-default-web-tcp-80 \{([^}]*)\}", text).group(1)
    assert "ip saddr 10.244.0.0/16 goto svc-default-web-tcp-80" in local   # pods: every endpoint
    assert "dnat ip to 10.244.1.5:8080" in local and "10.244.2.5" not in local and "masquerade" not in local
    elsewhere = render_ruleset([svc], [slice_("web", [here, there])], ["10.79.0.12"],
                               cluster_cidr="10.244.0.0/16", node_name="w3")
    assert re.search(r"chain lb-local-default-web-tcp-80 \{[^}]*drop", elsewhere)
