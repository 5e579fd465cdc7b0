"""The resolv.conf a pod gets (ClusterFirst DNS policy), as the kubelet writes it."""

from __future__ import annotations


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
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    config = spec.get("dnsConfig") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"  # the kubelet's rule: only ClusterFirstWithHostNet gives host-network pods cluster DNS
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        options = pod_dns_options(cluster_dns, namespace, domain)
    elif policy == "None":
        options = {"dns_server": [], "dns_search": [], "dns_option": []}
    else:
        options = {}
    if config:
        options.setdefault("dns_server", []).extend(config.get("nameservers") or [])
        options.setdefault("dns_search", []).extend(config.get("searches") or [])
        for opt in config.get("options") or []:
            value = opt.get("value")
            options.setdefault("dns_option", []).append(f"{opt['name']}:{value}" if value else opt["name"])
    return {key: value for key, value in options.items() if value}
