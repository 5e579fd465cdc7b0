"""Services and EndpointSlices -> the nftables ruleset of table `ip kfab` (a pure function, no I/O).

The text is one nft transaction: create the table (so the delete cannot fail), delete it, write it anew —
`nft -f` applies all of it or none, so packets never see a half-written table.

Shape (as kube-proxy's nftables mode):
- nat prerouting/output jump to `services`: a verdict map keyed by ClusterIP . protocol . port, and one
  keyed by protocol . NodePort for packets to a node address, each `goto` a chain per service port;
- a service-port chain marks off-cluster sources for masquerade (NodePort clients from outside would get
  replies from a pod on another node otherwise) and DNATs to an endpoint picked by `numgen random mod N`
  (one rule with an anonymous map, not a chain per endpoint: a tenth of the text for nft to parse);
- hairpin traffic (a pod reaching itself through its Service, source == destination after DNAT) is
  masqueraded in postrouting, by a set of (ip . ip) pairs of the endpoints;
- filter chains (before DNAT) reject Service ports with no ready endpoint at once: TCP reset, ICMP
  port-unreachable for UDP — as a client expects from a closed port, instead of a timeout;
- postrouting masquerades marked packets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

TABLE = "kfab"
MASQ_MARK = 0x4000
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP")   # SCTP is left out: the lab kernels have no nf_nat_sctp guarantee


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int


@dataclass
class ServicePort:
    """One port of one Service as the proxy programs it."""
    namespace: str
    name: str
    port_name: str
    protocol: str           # "tcp" | "udp"
    cluster_ip: str | None
    port: int
    node_port: int | None
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def chain(self) -> str:
        # nft identifiers may hold letters, digits, '-', '.', '_' and '/': the chain reads as the Service.
        return f"svc-{self.namespace}-{self.name}-{self.protocol}-{self.port}"


def _ready(endpoint: dict) -> bool:
    # EndpointSlice API: a nil `ready` condition means ready; terminating endpoints are never ready.
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and not conditions.get("terminating")


def _valid_ipv4(value: str | None) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value or ""), ipaddress.IPv4Address)
    except ValueError:
        return False


def service_ports(services: list[dict], slices: list[dict]) -> list[ServicePort]:
    """Every TCP/UDP port of every Service with a ClusterIP or NodePort, with its ready endpoints."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc and s.get("addressType", "IPv4") == "IPv4":
            by_service.setdefault((meta.get("namespace", ""), svc), []).append(s)
    out: list[ServicePort] = []
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        cluster_ip = spec.get("clusterIP")
        cluster_ip = cluster_ip if _valid_ipv4(cluster_ip) else None   # "None" = headless
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        for p in spec.get("ports") or []:
            protocol = (p.get("protocol") or "TCP").upper()
            if protocol not in PROTOCOLS or not p.get("port"):
                continue
            node_port = p.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else None
            if cluster_ip is None and not node_port:
                continue
            sp = ServicePort(ns, name, p.get("name") or "", protocol.lower(), cluster_ip, int(p["port"]),
                             int(node_port) if node_port else None)
            seen: set[Endpoint] = set()
            for s in by_service.get((ns, name), []):
                target = next((sp_ for sp_ in s.get("ports") or []
                               if (sp_.get("name") or "") == sp.port_name
                               and (sp_.get("protocol") or "TCP").upper() == protocol), None)
                if target is None or not target.get("port"):
                    continue
                for e in s.get("endpoints") or []:
                    if not _ready(e):
                        continue
                    for ip in e.get("addresses") or []:
                        if _valid_ipv4(ip):
                            seen.add(Endpoint(ip, int(target["port"])))
            sp.endpoints = sorted(seen, key=lambda e: (ipaddress.ip_address(e.ip), e.port))
            out.append(sp)
    out.sort(key=lambda sp: (sp.namespace, sp.name, sp.protocol, sp.port))
    return out


def _elements(items: list[str]) -> str:
    return "elements = { " + ", ".join(items) + " }" if items else ""


def render_ruleset(services: list[dict], slices: list[dict], node_ips: list[str], *,
                   cluster_cidr: str | None = None, local_pod_cidr: str | None = None) -> str:
    """The whole `table ip kfab` as `nft -f` input.

    node_ips: this node's addresses where NodePorts answer (empty: any local address, by `fib`).
    cluster_cidr: pod network; ClusterIP traffic from outside it is masqueraded (kube-proxy's rule).
    local_pod_cidr: this node's pod /24, given only where bridged traffic skips netfilter (no
    br_netfilter): a pod reaching a Service backed by a pod on the same bridge would get the reply
    straight from that pod, not un-DNATed; masquerading that pair sends the reply back through the host.
    """
    ports = service_ports(services, slices)
    out: list[str] = [f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    add = out.append

    cluster_map, nodeport_map, no_ep_cluster, no_ep_nodeport = [], [], [], []
    for sp in ports:
        if sp.endpoints:
            if sp.cluster_ip:
                cluster_map.append(f"{sp.cluster_ip} . {sp.protocol} . {sp.port} : goto {sp.chain}")
            if sp.node_port:
                nodeport_map.append(f"{sp.protocol} . {sp.node_port} : goto {sp.chain}")
        else:
            if sp.cluster_ip:
                no_ep_cluster.append(f"{sp.cluster_ip} . {sp.protocol} . {sp.port}")
            if sp.node_port:
                no_ep_nodeport.append(f"{sp.protocol} . {sp.node_port}")

    add("  map service-ips {")
    add("    type ipv4_addr . inet_proto . inet_service : verdict")
    if cluster_map:
        add("    " + _elements(cluster_map))
    add("  }")
    add("  map service-nodeports {")
    add("    type inet_proto . inet_service : verdict")
    if nodeport_map:
        add("    " + _elements(nodeport_map))
    add("  }")
    add("  set no-endpoint-services {")
    add("    type ipv4_addr . inet_proto . inet_service")
    if no_ep_cluster:
        add("    " + _elements(no_ep_cluster))
    add("  }")
    add("  set no-endpoint-nodeports {")
    add("    type inet_proto . inet_service")
    if no_ep_nodeport:
        add("    " + _elements(no_ep_nodeport))
    add("  }")
    node_ips = sorted({ip for ip in node_ips if _valid_ipv4(ip)}, key=ipaddress.ip_address)
    add("  set node-ips {")
    add("    type ipv4_addr")
    if node_ips:
        add("    " + _elements(node_ips))
    add("  }")
    to_node = "ip daddr @node-ips" if node_ips else "fib daddr type local"
    endpoint_ips = sorted({ep.ip for sp in ports for ep in sp.endpoints}, key=ipaddress.ip_address)
    add("  set hairpin {")
    add("    type ipv4_addr . ipv4_addr")
    if endpoint_ips:
        add("    " + _elements([f"{ip} . {ip}" for ip in endpoint_ips]))
    add("  }")

    # Rejects run in filter chains just before DNAT (priority -110 = dstnat - 10; nft names `dstnat` only in
    # prerouting), as kube-proxy's nftables mode.
    add("  chain no-endpoints {")
    add("    meta l4proto tcp reject with tcp reset")
    add("    reject with icmp type port-unreachable")
    add("  }")
    add("  chain endpoints-check {")
    add("    ip daddr . meta l4proto . th dport @no-endpoint-services goto no-endpoints")
    add(f"    {to_node} meta l4proto . th dport @no-endpoint-nodeports goto no-endpoints")
    add("  }")
    for hook in ("input", "forward", "output"):
        add(f"  chain filter-{hook} {{")
        add(f"    type filter hook {hook} priority -110; policy accept;")
        add("    ct state new jump endpoints-check")
        add("  }")

    add("  chain services {")
    add("    ip daddr . meta l4proto . th dport vmap @service-ips")
    add(f"    {to_node} meta l4proto . th dport vmap @service-nodeports")
    add("  }")
    for hook in ("prerouting", "output"):
        add(f"  chain nat-{hook} {{")
        add(f"    type nat hook {hook} priority -100; policy accept;")
        add("    jump services")
        add("  }")
    add("  chain nat-postrouting {")
    add("    type nat hook postrouting priority 100; policy accept;")
    add(f"    meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade")
    add("    ct status dnat ip saddr . ip daddr @hairpin masquerade")
    if local_pod_cidr:
        add(f"    ct status dnat ip saddr {local_pod_cidr} ip daddr {local_pod_cidr} masquerade")
    add("  }")
    add("  chain mark-for-masquerade {")
    add(f"    meta mark set meta mark | {MASQ_MARK:#x}")
    add("  }")

    for sp in ports:
        if not sp.endpoints:
            continue
        add(f"  chain {sp.chain} {{")
        if cluster_cidr:
            add(f"    ip saddr != {cluster_cidr} jump mark-for-masquerade")
        elif sp.node_port:
            add(f"    {to_node} jump mark-for-masquerade")
        if len(sp.endpoints) == 1:
            add(f"    meta l4proto {sp.protocol} dnat ip to {sp.endpoints[0].ip}:{sp.endpoints[0].port}")
        else:
            choices = ", ".join(f"{i} : {ep.ip} . {ep.port}" for i, ep in enumerate(sp.endpoints))
            add(f"    meta l4proto {sp.protocol} dnat ip to numgen random mod {len(sp.endpoints)} map {{ {choices} }}")
        add("  }")
    add("}")
    return "\n".join(out) + "\n"
