"""Cluster DNS records from Services and EndpointSlices (pure: no I/O), as the Kubernetes DNS spec names them
(https://github.com/kubernetes/dns/blob/master/docs/specification.md):

- `<svc>.<ns>.svc.<domain>` A -> the ClusterIP; a headless Service -> the IPs of its ready endpoints;
  an ExternalName Service -> CNAME to its externalName;
- `<hostname>.<svc>.<ns>.svc.<domain>` A -> an endpoint with a hostname (StatefulSet pods whose
  `subdomain` is a headless Service);
- `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for every named port: to the Service name (ClusterIP), or
  one per ready endpoint to its hostname or `<a-b-c-d>.<svc>...` name (headless);
- `<a-b-c-d>.<ns>.pod.<domain>` A -> a.b.c.d (CoreDNS `pods insecure`, what many images expect).
A name under the cluster domain that has no records of the asked type but exists (e.g. `<ns>.svc.<domain>`,
AAAA of a Service) is NODATA; anything else under it is NXDOMAIN.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from kfab.objects.meta import meta_of, spec_of

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TTL = 5


@dataclass(frozen=True)
class SRV:
    port: int
    target: str   # absolute name, with the trailing dot


@dataclass
class Name:
    a: list[str] = field(default_factory=list)
    cname: str | None = None
    srv: list[SRV] = field(default_factory=list)


def _ready(endpoint: dict) -> bool:
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and not conditions.get("terminating")


def _dashed(ip: str) -> str:
    return ip.replace(".", "-")


class Records:
    """Every cluster record, indexed by lowercase absolute name (with the trailing dot)."""

    def __init__(self, domain: str = "cluster.local"):
        self.domain = domain.strip(".").lower() + "."
        self.names: dict[str, Name] = {}
        self.exists: set[str] = set()     # names with no records but that must answer NODATA

    def _name(self, fqdn: str) -> Name:
        fqdn = fqdn.lower()
        labels = fqdn.split(".")
        for i in range(1, len(labels) - 1):           # parents exist too (empty non-terminals)
            parent = ".".join(labels[i:])
            if parent.endswith(self.domain) and len(parent) >= len(self.domain):
                self.exists.add(parent)
        return self.names.setdefault(fqdn, Name())

    @classmethod
    def build(cls, services: list[dict], slices: list[dict], domain: str = "cluster.local") -> "Records":
        records = cls(domain)
        by_service: dict[tuple[str, str], list[dict]] = {}
        for s in slices:
            meta = meta_of(s)
            svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc and s.get("addressType", "IPv4") == "IPv4":
                by_service.setdefault((meta.get("namespace", ""), svc), []).append(s)
        for svc in services:
            meta, spec = meta_of(svc), spec_of(svc)
            ns, name = meta.get("namespace", ""), meta.get("name", "")
            records._add_service(ns, name, spec, by_service.get((ns, name), []))
        records.exists.add(records.domain)
        for special in ("svc.", "pod."):
            records.exists.add(special + records.domain)
        return records

    def _add_service(self, ns: str, name: str, spec: dict, slices: list[dict]) -> None:
        fqdn = f"{name}.{ns}.svc.{self.domain}"
        entry = self._name(fqdn)
        if spec.get("type") == "ExternalName":
            if spec.get("externalName"):
                entry.cname = spec["externalName"].rstrip(".") + "."
            return
        cluster_ip = spec.get("clusterIP")
        headless = cluster_ip in (None, "", "None")
        if not headless:
            entry.a.append(cluster_ip)
        for port in spec.get("ports") or []:
            if not port.get("name"):
                continue
            proto = (port.get("protocol") or "TCP").lower()
            srv_name = f"_{port['name']}._{proto}.{fqdn}"
            if not headless:
                self._name(srv_name).srv.append(SRV(int(port["port"]), fqdn))
        if not headless:
            return
        seen: set[str] = set()
        for s in slices:
            ports = {(p.get("name") or "", (p.get("protocol") or "TCP").lower()): p.get("port")
                     for p in s.get("ports") or []}
            for e in s.get("endpoints") or []:
                if not _ready(e):
                    continue
                for ip in e.get("addresses") or []:
                    try:
                        ipaddress.IPv4Address(ip)
                    except ValueError:
                        continue
                    if ip not in seen:
                        seen.add(ip)
                        entry.a.append(ip)
                    host = e.get("hostname") or _dashed(ip)
                    host_fqdn = f"{host}.{fqdn}"
                    if ip not in self._name(host_fqdn).a:
                        self._name(host_fqdn).a.append(ip)
                    for (port_name, proto), number in ports.items():
                        if port_name and number:
                            srv = self._name(f"_{port_name}._{proto}.{fqdn}").srv
                            if SRV(int(number), host_fqdn) not in srv:
                                srv.append(SRV(int(number), host_fqdn))

    # --- lookups ------------------------------------------------------------------------------------

    def in_domain(self, qname: str) -> bool:
        qname = qname.lower()
        return qname == self.domain or qname.endswith("." + self.domain)

    def lookup(self, qname: str) -> Name | None:
        """The records of `qname` (absolute, any case); an empty Name for NODATA; None for NXDOMAIN."""
        qname = qname.lower()
        found = self.names.get(qname)
        if found is not None:
            return found
        pod = self._pod_name(qname)
        if pod is not None:
            return Name(a=[pod])
        if qname in self.exists:
            return Name()
        return None

    def _pod_name(self, qname: str) -> str | None:
        # <a-b-c-d>.<namespace>.pod.<domain>
        labels = qname[: -len(self.domain)].rstrip(".").split(".") if qname.endswith(self.domain) else []
        if len(labels) != 3 or labels[2] != "pod":
            return None
        try:
            return str(ipaddress.IPv4Address(labels[0].replace("-", ".")))
        except ValueError:
            return None
