"""NetworkPolicy -> nftables rules of one node (pure): who is isolated, which peers and ports get through."""

from __future__ import annotations

from kfab.proxy.policy_rules import build_policy_rules


def pod(ns, name, ip, node="w1", labels=None, ports=()):
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports]}]},
            "status": {"podIP": ip, "phase": "Running"}}


def namespace(name, **labels):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def policy(ns, name, **spec):
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


PODS = [pod("db", "pg", "10.244.1.5", labels={"app": "pg"}, ports=[("pg", 5432)]),
        pod("db", "backup", "10.244.1.6", labels={"app": "backup"}),
        pod("web", "fe", "10.244.2.5", node="w2", labels={"app": "fe"}),
        pod("other", "x", "10.244.2.6", node="w2", labels={"app": "fe"}),
        pod("db", "host", "10.79.0.11", labels={"app": "pg"}) | {"spec": {"nodeName": "w1", "hostNetwork": True}}]
NAMESPACES = [namespace("db"), namespace("web", team="a"), namespace("other")]


def rules(policies, node="w1"):
    return build_policy_rules(policies, PODS, NAMESPACES, node)


def test_pods_no_policy_selects_are_not_isolated():
    rs = rules([policy("db", "pg-only", podSelector={"matchLabels": {"app": "pg"}}, policyTypes=["Ingress"])])
    assert list(rs.ingress) == ["10.244.1.5"] and rs.egress == {}


def test_default_deny_is_an_empty_chain_that_drops():
    rs = rules([policy("db", "deny", policyTypes=["Ingress", "Egress"])])
    assert rs.ingress == {"10.244.1.5": [], "10.244.1.6": []} and rs.egress == rs.ingress
    text = rs.text()
    assert "10.244.1.5 : jump ingress-10.244.1.5" in text and "ct state established,related accept" in text


def test_only_this_nodes_pods_get_chains():
    assert list(rules([policy("web", "deny", policyTypes=["Ingress"])], node="w2").ingress) == ["10.244.2.5"]
    assert rules([policy("web", "deny", policyTypes=["Ingress"])], node="w1").ingress == {}


def test_namespace_selector_picks_pods_of_labelled_namespaces_and_named_ports_resolve():
    rs = rules([policy("db", "from-team-a", podSelector={"matchLabels": {"app": "pg"}}, ingress=[{
        "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
        "ports": [{"port": "pg", "protocol": "TCP"}]}])])
    assert rs.ingress["10.244.1.5"] == ["ip saddr { 10.244.2.5 } tcp dport 5432 return"]


def test_pod_selector_alone_means_the_policys_namespace_and_both_selectors_combine():
    same_ns = rules([policy("db", "p", podSelector={"matchLabels": {"app": "pg"}},
                            ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "backup"}}}]}])])
    assert same_ns.ingress["10.244.1.5"] == ["ip saddr { 10.244.1.6 } return"]
    both = rules([policy("db", "p", podSelector={"matchLabels": {"app": "pg"}}, ingress=[{"from": [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "fe"}}}]}])])
    assert both.ingress["10.244.1.5"] == ["ip saddr { 10.244.2.5, 10.244.2.6 } return"]  # hostNetwork pods never


def test_ip_block_with_except_and_port_ranges():
    rs = rules([policy("db", "p", podSelector={"matchLabels": {"app": "pg"}}, ingress=[{
        "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.0.0/16"]}}],
        "ports": [{"port": 8000, "endPort": 8010, "protocol": "UDP"}]}])])
    assert rs.ingress["10.244.1.5"] == [
        "ip saddr 10.0.0.0/8 ip saddr != { 10.1.0.0/16, 10.2.0.0/16 } udp dport 8000-8010 return"]


def test_a_peer_selecting_nobody_allows_nothing_and_empty_from_allows_everyone():
    nobody = rules([policy("db", "p", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "none"}}}]}])])
    assert nobody.ingress["10.244.1.5"] == []
    anyone = rules([policy("db", "p", ingress=[{"ports": [{"port": 5432, "protocol": "TCP"}]}])])
    assert anyone.ingress["10.244.1.5"] == ["tcp dport 5432 return"]


def test_egress_rules_match_destinations_and_named_ports_of_the_destination_pod():
    rs = rules([policy("db", "out", podSelector={"matchLabels": {"app": "backup"}}, policyTypes=["Egress"], egress=[
        {"to": [{"podSelector": {"matchLabels": {"app": "pg"}}}], "ports": [{"port": "pg", "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "192.168.1.0/24"}}]}])])
    assert rs.egress["10.244.1.6"] == ["ip daddr 10.244.1.5 tcp dport 5432 return", "ip daddr 192.168.1.0/24 return"]
    assert rs.ingress == {}


def test_rules_of_several_policies_add_up():
    rs = rules([policy("db", "a", ingress=[{"ports": [{"port": 1, "protocol": "TCP"}]}]),
                policy("db", "b", podSelector={"matchLabels": {"app": "pg"}}, ingress=[{"ports": [{"port": 2}]}])])
    assert rs.ingress["10.244.1.5"] == ["tcp dport 1 return", "tcp dport 2 return"]
    assert rs.ingress["10.244.1.6"] == ["tcp dport 1 return"]
