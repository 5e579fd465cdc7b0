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
