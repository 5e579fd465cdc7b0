"""The resolv.conf a pod gets (ClusterFirst DNS policy), as the kubelet writes it."""

from __future__ import annotations
from kfab.objects.meta import meta_of, spec_of


def pod_resolv_conf(dns_ip: str, namespace: str, domain: str = "cluster.local") -> str:
    """`nameserver`, the search path that makes `web` and `web.other` resolve, and ndots:5 (kubelet's)."""
    domain = domain.strip(".")
    return (f"nameserver {dns_ip}\n"
            f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
            "options ndots:5\n")


def pod_dns_options(dns_ip: str, namespace: str, domain: str = "cluster.local") -> dict:
    """The same, as options of Podman's pod create (libpod PodSpecGenerator fields): Podman then writes the
    pod's /etc/resolv.conf itself, shared by all its containers."""
    domain = domain.strip(".")
    return {"dns_server": [dns_ip], "dns_search": [f"{namespace}.svc.{domain}", f"svc.{domain}", domain],
            "dns_option": ["ndots:5"]}


def pod_dns_settings(pod: dict, cluster_dns: str | None, domain: str = "cluster.local") -> dict:
    """Podman pod-create DNS options for a pod, following its dnsPolicy and dnsConfig as the kubelet does.

    ClusterFirst (the default) uses the cluster DNS; without one configured on the node the kubelet falls
    back to the host's resolver, and so do we. Default means the host's resolver; None means only dnsConfig.
    """
    spec = spec_of(pod)
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    config = spec.get("dnsConfig") or {}
    namespace = meta_of(pod).get("namespace", "default")
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"  # the kubelet's rule: only ClusterFirstWithHostNet gives host-network pods cluster DNS
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        options = pod_dns_options(cluster_dns, namespace, domain)
    elif policy == "None":
        options = {"dns_server": [], "dns_search": [], "dns_option": []}
    else:
        options = {}
    if config:
        # The kubelet's merge: servers and searches appended without duplicates; an option of dnsConfig
        # replaces the policy's option of the same name (ndots:2 over ndots:5), in the policy's order.
        for key, extra in (("dns_server", config.get("nameservers")), ("dns_search", config.get("searches"))):
            merged = options.setdefault(key, [])
            merged.extend(v for v in extra or [] if v not in merged)
        by_name = {o.split(":", 1)[0]: o for o in options.get("dns_option", [])}
        for opt in config.get("options") or []:
            value = opt.get("value")
            by_name[opt["name"]] = f"{opt['name']}:{value}" if value else opt["name"]
        options["dns_option"] = list(by_name.values())
    return {key: value for key, value in options.items() if value}
