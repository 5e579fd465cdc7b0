"""Which resolver a pod gets, by dnsPolicy and dnsConfig, as the kubelet decides it."""

from kfab.dns.resolvconf import pod_dns_settings


def pod(namespace="shop", **spec):
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_cluster_first_pods_use_cluster_dns_with_their_namespace_first_in_the_search_path():
    assert pod_dns_settings(pod(), "10.96.0.10") == {
        "dns_server": ["10.96.0.10"],
        "dns_search": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "dns_option": ["ndots:5"],
    }


def test_without_a_cluster_dns_configured_pods_keep_the_hosts_resolver():
    assert pod_dns_settings(pod(), None) == {}


def test_default_policy_and_host_network_pods_keep_the_hosts_resolver():
    assert pod_dns_settings(pod(dnsPolicy="Default"), "10.96.0.10") == {}
    assert pod_dns_settings(pod(hostNetwork=True), "10.96.0.10") == {}
    assert pod_dns_settings(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), "10.96.0.10")["dns_server"] \
        == ["10.96.0.10"]


def test_none_policy_takes_only_dns_config():
    settings = pod_dns_settings(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.2.3.4"], "searches": ["example.org"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), "10.96.0.10")
    assert settings == {"dns_server": ["1.2.3.4"], "dns_search": ["example.org"], "dns_option": ["ndots:2", "edns0"]}


def test_dns_config_adds_to_cluster_dns():
    settings = pod_dns_settings(pod(dnsConfig={"searches": ["example.org"]}), "10.96.0.10", "corp.local")
    assert settings["dns_search"] == ["shop.svc.corp.local", "svc.corp.local", "corp.local", "example.org"]


def test_dns_config_options_replace_the_cluster_options_of_the_same_name_and_duplicates_go():
    settings = pod_dns_settings(pod(dnsConfig={
        "nameservers": ["10.96.0.10", "192.0.2.53"], "searches": ["svc.cluster.local", "example.org"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), "10.96.0.10")
    assert settings["dns_server"] == ["10.96.0.10", "192.0.2.53"]
    assert settings["dns_search"] == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.org"]
    assert settings["dns_option"] == ["ndots:2", "edns0"]
