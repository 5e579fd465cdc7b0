"""Service rules (pkg/apis/core/validation: ValidateService, ValidateServiceUpdate).

Range checks of clusterIP and nodePort values belong to the allocator, which knows the configured ranges.
"""

from __future__ import annotations

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.validation.field import child, duplicate, forbidden, invalid, not_supported, required
from kfab.objects.validation.meta import as_dict, as_list, as_str, validate_labels
from kfab.objects.validation.pod import PROTOCOLS, validate_port_num_or_name

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
TRAFFIC_POLICIES = ("Cluster", "Local")


def externally_accessible(spec: dict) -> bool:
    """A type whose Service answers outside the cluster: the only ones that may set externalTrafficPolicy."""
    return spec.get("type") in ("NodePort", "LoadBalancer")


def _validate_ports(spec: dict, headless: bool) -> list[Cause]:
    causes = []
    ports = as_list(spec.get("ports"))
    service_type = spec.get("type")
    require_name = len(ports) > 1
    seen_names: set[str] = set()
    seen_ports: set[tuple] = set()
    seen_node_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        port, here = as_dict(port), child("spec", "ports", i)
        name = as_str(port.get("name"))
        if require_name and not name:
            causes.append(required(child(here, "name")))
        elif name:
            causes += [invalid(child(here, "name"), name, m) for m in names.is_dns1123_label(name)]
            if name in seen_names:
                causes.append(duplicate(child(here, "name"), name))
            seen_names.add(name)
        number = port.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            causes += [invalid(child(here, "port"), number, m) for m in names.is_valid_port_num(number)]
        elif number is None:
            causes.append(required(child(here, "port")))
        protocol = port.get("protocol")
        if not protocol:
            causes.append(required(child(here, "protocol")))
        elif protocol not in PROTOCOLS:
            causes.append(not_supported(child(here, "protocol"), protocol, PROTOCOLS))
        if port.get("targetPort") is not None:
            causes += validate_port_num_or_name(port.get("targetPort"), child(here, "targetPort"))
        key = (repr(number), repr(protocol))
        if key in seen_ports:
            causes.append(duplicate(here, {"port": number, "protocol": protocol}))
        seen_ports.add(key)
        node_port = port.get("nodePort")
        if node_port:
            if service_type == "ClusterIP":
                causes.append(forbidden(child(here, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
            elif (repr(node_port), repr(protocol)) in seen_node_ports:
                causes.append(duplicate(child(here, "nodePort"), node_port))
            seen_node_ports.add((repr(node_port), repr(protocol)))
    if not ports and not headless and service_type != "ExternalName":
        causes.append(required("spec.ports"))
    return causes


def _validate_cluster_ips(spec: dict) -> list[Cause]:
    causes = []
    cluster_ip = as_str(spec.get("clusterIP"))
    cluster_ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))]
    if cluster_ips and cluster_ip and cluster_ips[0] != cluster_ip:
        causes.append(invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    if spec.get("type") == "ExternalName":
        if cluster_ips or cluster_ip:
            causes.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        return causes
    if len(cluster_ips) > 1:
        causes.append(invalid("spec.clusterIPs", cluster_ips, "may only hold up to 1 values in this cluster, "
                              "which is not configured for dual-stack services"))
    for i, ip in enumerate(cluster_ips):
        if ip == "None" and i == 0:
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                causes.append(invalid(child("spec", "clusterIPs", i), ip,
                                      f"may not be set to 'None' for {spec.get('type')} services"))
            continue
        causes += [invalid(child("spec", "clusterIPs", i), ip, m) for m in names.is_valid_ip(ip)]
    return causes


def validate_service(svc: dict) -> list[Cause]:
    spec = as_dict(svc.get("spec"))
    causes: list[Cause] = []
    service_type = spec.get("type")
    if service_type not in SERVICE_TYPES:
        causes.append(not_supported("spec.type", service_type, SERVICE_TYPES))
    headless = spec.get("clusterIP") == "None"
    causes += _validate_ports(spec, headless)
    causes += _validate_cluster_ips(spec)
    if service_type == "ExternalName":
        external = as_str(spec.get("externalName"))
        if not external:
            causes.append(required("spec.externalName"))
        else:
            causes += [invalid("spec.externalName", external, m)
                       for m in names.is_dns1123_subdomain(external.removesuffix("."))]
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in SESSION_AFFINITIES:
        causes.append(not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None:
        if policy not in IP_FAMILY_POLICIES:
            causes.append(not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
        elif policy == "RequireDualStack" and not (headless and not spec.get("selector")):
            causes.append(invalid("spec.ipFamilyPolicy", policy,
                                  "this cluster is not configured for dual-stack services"))
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            causes.append(not_supported(child("spec", "ipFamilies", i), family, ["IPv4", "IPv6"]))
        elif family != "IPv4":
            causes.append(invalid(child("spec", "ipFamilies", i), family, "not configured on this cluster"))
    external_policy = spec.get("externalTrafficPolicy")
    if external_policy:
        if not externally_accessible(spec):
            causes.append(invalid("spec.externalTrafficPolicy", external_policy,
                                  "may only be set for externally-accessible services"))
        elif external_policy not in TRAFFIC_POLICIES:
            causes.append(not_supported("spec.externalTrafficPolicy", external_policy, TRAFFIC_POLICIES))
    internal_policy = spec.get("internalTrafficPolicy")
    if internal_policy is not None and internal_policy not in TRAFFIC_POLICIES:
        causes.append(not_supported("spec.internalTrafficPolicy", internal_policy, TRAFFIC_POLICIES))
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        causes += [invalid(child("spec", "externalIPs", i), ip, m) for m in names.is_valid_ip(as_str(ip))]
    causes += validate_labels(spec.get("selector"), "spec.selector")
    return causes


def validate_service_update(svc: dict, old: dict) -> list[Cause]:
    spec, old_spec = as_dict(svc.get("spec")), as_dict(old.get("spec"))
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []  # the IP is dropped or allocated with the type change
    old_ips, new_ips = as_list(old_spec.get("clusterIPs")), as_list(spec.get("clusterIPs"))
    if old_ips and new_ips and old_ips[0] != new_ips[0]:
        return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []
