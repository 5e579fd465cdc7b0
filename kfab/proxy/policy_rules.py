"""NetworkPolicies + Pods + Namespaces -> the nftables table `inet kfab-policy` of one node (pure, no I/O).

Each node enforces for its own pods: ingress rules where a local pod is the destination, egress rules where
one is the source. Every pod packet crosses the node's forward hook — routed packets (other nodes, Services
after DNAT) always, packets between two pods on the node's bridge because br_netfilter hands bridged IPv4 to
netfilter (net.bridge.bridge-nf-call-iptables=1, set by role worker) — so one base chain sees it all:

    forward: ct state established,related accept      (replies and running connections, as CNIs do)
             ip saddr vmap @egress-isolated             (a local pod some policy isolates for egress)
             ip daddr vmap @ingress-isolated            (... for ingress)
    egress-<pod IP> / ingress-<pod IP>: one rule per allowed (peers, ports), `return` when it matches, then drop

Semantics (networking.k8s.io/v1): a pod is isolated in a direction when a policy of its namespace selects it
with that policyType; what is allowed is the union of those policies' rules; a rule's peers are an OR
(podSelector in the policy's namespace, namespaceSelector, both = pods of matching namespaces, ipBlock minus
except), an empty `from`/`to` allows every peer, empty `ports` every port; named ports are looked up in the
destination pod's containers; endPort makes a range. Traffic from the node itself (its processes, probes,
the ingress controller) never crosses forward and is always allowed, as with most CNIs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kfab.objects.validation.meta import selector_matches
from kfab.objects.meta import meta_of, spec_of, status_of

TABLE = "kfab-policy"


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str
    node: str
    labels: dict = field(hash=False, compare=False, default_factory=dict)
    ports: tuple[tuple[str, str, int], ...] = ()   # (name, protocol, containerPort)


def pod_info(pod: dict) -> PodInfo | None:
    """A pod with its own address (not hostNetwork), as policies see it; None for pods they cannot."""
    meta, spec, status = meta_of(pod), spec_of(pod), status_of(pod)
    ip = status.get("podIP")
    if not ip or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    try:
        if not isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address):
            return None
    except ValueError:
        return None
    ports = tuple((p["name"], (p.get("protocol") or "TCP"), int(p["containerPort"]))
                  for c in spec.get("containers") or [] for p in c.get("ports") or []
                  if p.get("name") and p.get("containerPort"))
    return PodInfo(meta.get("namespace", ""), meta.get("name", ""), ip, spec.get("nodeName") or "",
                   meta.get("labels") or {}, ports)


def _selected(policy: dict, pod: PodInfo) -> bool:
    meta, spec = meta_of(policy), spec_of(policy)
    return meta.get("namespace") == pod.namespace and selector_matches(spec.get("podSelector"), pod.labels)


def _types(policy: dict) -> list[str]:
    spec = spec_of(policy)
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def _peer_pods(peer: dict, policy_ns: str, pods: list[PodInfo], ns_labels: dict[str, dict]) -> list[PodInfo]:
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    out = []
    for pod in pods:
        if ns_sel is not None:
            if not selector_matches(ns_sel, ns_labels.get(pod.namespace, {})):
                continue
        elif pod.namespace != policy_ns:
            continue
        if pod_sel is not None and not selector_matches(pod_sel, pod.labels):
            continue
        out.append(pod)
    return out


def _port_matches(port: dict, dest: PodInfo | None) -> list[str]:
    """nft match expressions for one NetworkPolicyPort; [] when a named port means nothing on `dest`."""
    protocol = (port.get("protocol") or "TCP").lower()
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        return [f"meta l4proto {protocol}"]
    if isinstance(number, str) and not number.isdigit():
        if dest is None:
            return []
        found = sorted({p for name, proto, p in dest.ports if name == number and proto.lower() == protocol})
        return [f"{protocol} dport {p}" for p in found]
    number = int(number)
    if end is not None and int(end) > number:
        return [f"{protocol} dport {number}-{int(end)}"]
    return [f"{protocol} dport {number}"]


def _addr_matches(direction: str, peer: dict, pods: list[PodInfo], policy_ns: str,
                  ns_labels: dict[str, dict]) -> list[str]:
    field_ = "saddr" if direction == "ingress" else "daddr"
    block = peer.get("ipBlock")
    if block is not None:
        text = f"ip {field_} {block['cidr']}"
        excepts = block.get("except") or []
        if excepts:
            text += f" ip {field_} != {{ {', '.join(excepts)} }}"
        return [text]
    ips = sorted({p.ip for p in _peer_pods(peer, policy_ns, pods, ns_labels)}, key=ipaddress.ip_address)
    return [f"ip {field_} {{ {', '.join(ips)} }}"] if ips else []


def _rule_lines(direction: str, rule: dict, target: PodInfo, policy_ns: str, pods: list[PodInfo],
                ns_labels: dict[str, dict]) -> list[str]:
    peers = rule.get("from" if direction == "ingress" else "to") or []
    ports = rule.get("ports") or []
    if peers:
        addresses = [a for peer in peers for a in _addr_matches(direction, peer, pods, policy_ns, ns_labels)]
        if not addresses:
            return []       # selects nobody now: allows nothing
    else:
        addresses = [""]
    lines = []
    for address in addresses:
        if not ports:
            lines.append(f"{address} return".strip())
            continue
        for port in ports:
            if direction == "ingress":
                for match in _port_matches(port, target):
                    lines.append(f"{address} {match} return".strip())
            else:
                named = isinstance(port.get("port"), str) and not str(port.get("port")).isdigit()
                if not named:
                    lines += [f"{address} {m} return".strip() for m in _port_matches(port, None)]
                    continue
                # A named egress port is the destination pod's: one rule per pod that has it.
                destinations = [p for peer in peers for p in _peer_pods(peer, policy_ns, pods, ns_labels)
                                if "ipBlock" not in peer] if peers else pods
                for dest in sorted(set(destinations), key=lambda p: ipaddress.ip_address(p.ip)):
                    lines += [f"ip daddr {dest.ip} {m} return" for m in _port_matches(port, dest)]
    return lines


@dataclass
class PolicyRuleset:
    ingress: dict[str, list[str]] = field(default_factory=dict)   # local pod IP -> chain lines
    egress: dict[str, list[str]] = field(default_factory=dict)

    def text(self) -> str:
        out = [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
        for direction in ("egress", "ingress"):
            chains = getattr(self, direction)
            out += [f"  map {direction}-isolated {{", "    type ipv4_addr : verdict"]
            if chains:
                out.append("    elements = { " + ", ".join(f"{ip} : jump {direction}-{ip}"
                                                         for ip in sorted(chains, key=ipaddress.ip_address)) + " }")
            out.append("  }")
        out += ["  chain forward {", "    type filter hook forward priority filter; policy accept;",
                "    ct state established,related accept",
                "    ip saddr vmap @egress-isolated", "    ip daddr vmap @ingress-isolated", "  }"]
        for direction in ("egress", "ingress"):
            for ip, lines in sorted(getattr(self, direction).items(), key=lambda kv: ipaddress.ip_address(kv[0])):
                out += [f"  chain {direction}-{ip} {{", *(f"    {line}" for line in lines), "    drop", "  }"]
        out.append("}")
        return "\n".join(out) + "\n"


def build_policy_rules(policies: list[dict], pods: list[dict], namespaces: list[dict], node_name: str) -> PolicyRuleset:
    infos = [i for i in (pod_info(p) for p in pods) if i is not None]
    ns_labels = {meta_of(n).get("name", ""): meta_of(n).get("labels") or {}
                 for n in namespaces}
    rs = PolicyRuleset()
    for pod in (i for i in infos if i.node == node_name):
        for direction, kind in (("ingress", "Ingress"), ("egress", "Egress")):
            selecting = [p for p in policies if _selected(p, pod) and kind in _types(p)]
            if not selecting:
                continue
            lines: list[str] = []
            for policy in sorted(selecting, key=lambda p: meta_of(p).get("name", "")):
                ns = meta_of(policy).get("namespace", "")
                for rule in spec_of(policy).get(direction) or []:
                    lines += _rule_lines(direction, rule, pod, ns, infos, ns_labels)
            getattr(rs, direction)[pod.ip] = list(dict.fromkeys(lines))
    return rs
