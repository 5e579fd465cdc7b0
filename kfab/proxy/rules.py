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
- postrouting masquerades marked packets;
- LoadBalancer addresses (status.loadBalancer.ingress: node addresses, or a pool address one node announces)
  join the ClusterIP map with the Service port; with externalTrafficPolicy Local they go to a chain of this
  node's endpoints only, unmasqueraded (the pod sees the client's address), dropped when there is none here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from kfab.objects.meta import meta_of, spec_of, status_of

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
    lb_ips: tuple[str, ...] = ()
    external_local: bool = False               # externalTrafficPolicy: Local
    local_endpoints: list[Endpoint] = field(default_factory=list)   # those on this node

    @property
    def chain(self) -> str:
        # nft identifiers may hold letters, digits, '-', '.', '_' and '/': the chain reads as the Service.
        return f"svc-{self.namespace}-{self.name}-{self.protocol}-{self.port}"

    @property
    def local_chain(self) -> str:
        return f"lb-local-{self.namespace}-{self.name}-{self.protocol}-{self.port}"


def _ready(endpoint: dict) -> bool:
    # EndpointSlice API: a nil `ready` condition means ready; terminating endpoints are never ready.
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and not conditions.get("terminating")


def _valid_ipv4(value: str | None) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value or ""), ipaddress.IPv4Address)
    except ValueError:
        return False


def _lb_ips(svc: dict) -> tuple[str, ...]:
    if spec_of(svc).get("type") != "LoadBalancer":
        return ()
    ingress = (status_of(svc).get("loadBalancer") or {}).get("ingress") or []
    return tuple(sorted({i["ip"] for i in ingress if _valid_ipv4(i.get("ip"))}, key=ipaddress.ip_address))


def service_ports(services: list[dict], slices: list[dict], node_name: str | None = None) -> list[ServicePort]:
    """Every TCP/UDP port of every Service with a ClusterIP or NodePort, with its ready endpoints (and those on
    `node_name`, for externalTrafficPolicy Local)."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for s in slices:
        meta = meta_of(s)
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc and s.get("addressType", "IPv4") == "IPv4":
            by_service.setdefault((meta.get("namespace", ""), svc), []).append(s)
    out: list[ServicePort] = []
    for svc in services:
        meta, spec = meta_of(svc), spec_of(svc)
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
                             int(node_port) if node_port else None, lb_ips=_lb_ips(svc),
                             external_local=spec.get("externalTrafficPolicy") == "Local")
            seen: set[Endpoint] = set()
            local: set[Endpoint] = set()
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
                            if node_name and e.get("nodeName") == node_name:
                                local.add(Endpoint(ip, int(target["port"])))
            sp.endpoints = sorted(seen, key=lambda e: (ipaddress.ip_address(e.ip), e.port))
            sp.local_endpoints = sorted(local, key=lambda e: (ipaddress.ip_address(e.ip), e.port))
            out.append(sp)
    out.sort(key=lambda sp: (sp.namespace, sp.name, sp.protocol, sp.port))
    return out


@dataclass
class Ruleset:
    """The table as data: sets/maps (kind, type line, elements) and chains (lines), in file order."""
    sets: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def text(self) -> str:
        """The whole table as `nft -f` input, replacing whatever table there was in one transaction."""
        out = [f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
        for name, (kind, type_line, elements) in self.sets.items():
            out += [f"  {kind} {name} {{", f"    {type_line}"]
            if elements:
                out.append("    elements = { " + ", ".join(elements) + " }")
            out.append("  }")
        for name, lines in self.chains.items():
            out += [f"  chain {name} {{", *(f"    {line}" for line in lines), "  }"]
        out.append("}")
        return "\n".join(out) + "\n"


def _dnat(sp: ServicePort, endpoints: list[Endpoint]) -> str:
    if len(endpoints) == 1:
        return f"meta l4proto {sp.protocol} dnat ip to {endpoints[0].ip}:{endpoints[0].port}"
    choices = ", ".join(f"{i} : {ep.ip} . {ep.port}" for i, ep in enumerate(endpoints))
    return f"meta l4proto {sp.protocol} dnat ip to numgen random mod {len(endpoints)} map {{ {choices} }}"


def build_ruleset(services: list[dict], slices: list[dict], node_ips: list[str], *,
                  cluster_cidr: str | None = None, local_pod_cidr: str | None = None,
                  node_name: str | None = None) -> Ruleset:
    """See render_ruleset."""
    ports = service_ports(services, slices, node_name)
    rs = Ruleset()
    cluster_map, nodeport_map, no_ep_cluster, no_ep_nodeport = [], [], [], []
    for sp in ports:
        if sp.endpoints:
            if sp.cluster_ip:
                cluster_map.append(f"{sp.cluster_ip} . {sp.protocol} . {sp.port} : goto {sp.chain}")
            if sp.node_port:
                nodeport_map.append(f"{sp.protocol} . {sp.node_port} : goto {sp.chain}")
            for ip in sp.lb_ips:
                target = sp.local_chain if sp.external_local else sp.chain
                cluster_map.append(f"{ip} . {sp.protocol} . {sp.port} : goto {target}")
        else:
            no_ep_cluster += [f"{ip} . {sp.protocol} . {sp.port}" for ip in sp.lb_ips]
            if sp.cluster_ip:
                no_ep_cluster.append(f"{sp.cluster_ip} . {sp.protocol} . {sp.port}")
            if sp.node_port:
                no_ep_nodeport.append(f"{sp.protocol} . {sp.node_port}")
    node_ips = sorted({ip for ip in node_ips if _valid_ipv4(ip)}, key=ipaddress.ip_address)
    endpoint_ips = sorted({ep.ip for sp in ports for ep in sp.endpoints}, key=ipaddress.ip_address)
    rs.sets = {
        "service-ips": ("map", "type ipv4_addr . inet_proto . inet_service : verdict", tuple(cluster_map)),
        "service-nodeports": ("map", "type inet_proto . inet_service : verdict", tuple(nodeport_map)),
        "no-endpoint-services": ("set", "type ipv4_addr . inet_proto . inet_service", tuple(no_ep_cluster)),
        "no-endpoint-nodeports": ("set", "type inet_proto . inet_service", tuple(no_ep_nodeport)),
        "node-ips": ("set", "type ipv4_addr", tuple(node_ips)),
        "hairpin": ("set", "type ipv4_addr . ipv4_addr", tuple(f"{ip} . {ip}" for ip in endpoint_ips)),
    }
    to_node = "ip daddr @node-ips" if node_ips else "fib daddr type local"
    chains = rs.chains
    # Rejects run in filter chains just before DNAT (priority -110 = dstnat - 10; nft names `dstnat` only in
    # prerouting), as kube-proxy's nftables mode.
    chains["no-endpoints"] = ("meta l4proto tcp reject with tcp reset", "reject with icmp type port-unreachable")
    chains["endpoints-check"] = ("ip daddr . meta l4proto . th dport @no-endpoint-services goto no-endpoints",
                                 f"{to_node} meta l4proto . th dport @no-endpoint-nodeports goto no-endpoints")
    for hook in ("input", "forward", "output"):
        chains[f"filter-{hook}"] = (f"type filter hook {hook} priority -110; policy accept;",
                                    "ct state new jump endpoints-check")
    chains["services"] = ("ip daddr . meta l4proto . th dport vmap @service-ips",
                          f"{to_node} meta l4proto . th dport vmap @service-nodeports")
    for hook in ("prerouting", "output"):
        chains[f"nat-{hook}"] = (f"type nat hook {hook} priority -100; policy accept;", "jump services")
    postrouting = ["type nat hook postrouting priority 100; policy accept;",
                   f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade",
                   "ct status dnat ip saddr . ip daddr @hairpin masquerade"]
    if local_pod_cidr:
        postrouting.append(f"ct status dnat ip saddr {local_pod_cidr} ip daddr {local_pod_cidr} masquerade")
    if cluster_cidr:
        # A pod reaching a Service whose endpoint is a host address outside the pod network (the API server on
        # a control-plane host, kfab dns on a worker's IP): that host may have no route back to pod
        # addresses (no node agent there), so the reply must come back to this node's address.
        postrouting.append(f"ct status dnat ip saddr {cluster_cidr} ip daddr != {cluster_cidr} masquerade")
    chains["nat-postrouting"] = tuple(postrouting)
    chains["mark-for-masquerade"] = (f"meta mark set meta mark | {MASQ_MARK:#x}",)

    for sp in ports:
        if not sp.endpoints:
            continue
        lines = []
        if cluster_cidr:
            lines.append(f"ip saddr != {cluster_cidr} jump mark-for-masquerade")
        elif sp.node_port:
            lines.append(f"{to_node} jump mark-for-masquerade")
        lines.append(_dnat(sp, sp.endpoints))
        chains[sp.chain] = tuple(lines)
        if sp.lb_ips and sp.external_local:
            # Pods reaching the address from inside the cluster still get every endpoint (kube-proxy's rule).
            local = [f"ip saddr {cluster_cidr} goto {sp.chain}"] if cluster_cidr else []
            chains[sp.local_chain] = tuple(local + ([_dnat(sp, sp.local_endpoints)] if sp.local_endpoints
                                                    else ["drop"]))
    return rs


def render_ruleset(services: list[dict], slices: list[dict], node_ips: list[str], *,
                   cluster_cidr: str | None = None, local_pod_cidr: str | None = None,
                   node_name: str | None = None) -> str:
    """The whole `table ip kfab` as `nft -f` input.

    node_ips: this node's addresses where NodePorts answer (empty: any local address, by `fib`).
    cluster_cidr: pod network; ClusterIP traffic from outside it is masqueraded (kube-proxy's rule).
    local_pod_cidr: this node's pod /24, given only where bridged traffic skips netfilter (no
    br_netfilter): a pod reaching a Service backed by a pod on the same bridge would get the reply
    straight from that pod, not un-DNATed; masquerading that pair sends the reply back through the host.
    """
    return build_ruleset(services, slices, node_ips, cluster_cidr=cluster_cidr, local_pod_cidr=local_pod_cidr,
                         node_name=node_name).text()


def render_update(old: Ruleset, new: Ruleset) -> str | None:
    """`nft -f` input turning table `old` (as applied) into `new` by touching only what changed — one
    Service's endpoints cost a chain and a few elements, not the whole table (kube-proxy's nftables mode
    does the same: a full rewrite of thousands of Services takes the kernel and nft a good part of a
    second). "" when nothing changed; None when a base chain or a set's type changed (apply new.text())."""
    for name, lines in new.chains.items():
        if lines and lines[0].startswith("type ") and old.chains.get(name) != lines:
            return None
    if list(old.sets) != list(new.sets) or any(old.sets[n][:2] != new.sets[n][:2] for n in new.sets):
        return None
    out: list[str] = []
    t = f"ip {TABLE}"
    for name, lines in new.chains.items():     # chains first: new map elements may jump to them
        if old.chains.get(name) == lines:
            continue
        out.append(f"add chain {t} {name}" if name not in old.chains else f"flush chain {t} {name}")
        out += [f"add rule {t} {name} {line}" for line in lines]
    for name, (kind, _, elements) in new.sets.items():
        if old.sets[name][2] == elements:
            continue
        out.append(f"flush {kind} {t} {name}")
        if elements:
            out.append(f"add element {t} {name} {{ " + ", ".join(elements) + " }")
    for name in old.chains:                     # last: nothing refers to them any more
        if name not in new.chains:
            out.append(f"delete chain {t} {name}")
    return "\n".join(out) + "\n" if out else ""
