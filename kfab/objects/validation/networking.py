"""networking.k8s.io/v1 rules (pkg/apis/networking/validation: ValidateIngress, ValidateIngressClass,
ValidateNetworkPolicy), worded as kube-apiserver words them."""

from __future__ import annotations

import ipaddress
import re

from kfab.objects import names
from kfab.objects.errors import Cause
from kfab.objects.validation.field import child, forbidden, immutable, invalid, not_supported, required, too_long
from kfab.objects.validation.meta import as_dict, as_list, as_str, validate_label_selector

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
POLICY_TYPES = ("Egress", "Ingress")
PROTOCOLS = ("SCTP", "TCP", "UDP")
PARAMETER_SCOPES = ("Cluster", "Namespace")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")

_WILDCARD_FMT = r"\*\." + names.DNS1123_SUBDOMAIN_FMT
_WILDCARD_RE = re.compile(f"(?:{_WILDCARD_FMT})")
_WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
                 "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character")
# IsDomainPrefixedPath: "example.com/path"
_SEGMENT_RE = re.compile(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > names.DNS1123_SUBDOMAIN_MAX:
        errs.append(names.max_len_error(names.DNS1123_SUBDOMAIN_MAX))
    if _WILDCARD_RE.fullmatch(value) is None:
        errs.append(names.regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host_errors(host: str) -> list[str]:
    return is_wildcard_dns1123_subdomain(host) if "*" in host else names.is_dns1123_subdomain(host)


# --- Ingress ----------------------------------------------------------------------------------------------------

def _validate_backend(backend: dict, path: str) -> list[Cause]:
    """validateIngressBackend: exactly one of resource/service; a service names exactly one of port name/number."""
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        resource = as_dict(resource)
        causes = []
        for key in ("kind", "name"):
            if not as_str(resource.get(key)):
                causes.append(required(child(path, "resource", key)))
        group = as_str(resource.get("apiGroup"))
        if group:
            field = child(path, "resource", "apiGroup")
            causes += [invalid(field, group, m) for m in names.is_dns1123_subdomain(group)]
        return causes
    if service is None:
        return [invalid(path, "", "resource or service backend is required")]
    service, causes = as_dict(service), []
    name = as_str(service.get("name"))
    if not name:
        causes.append(required(child(path, "service", "name")))
    else:
        causes += [invalid(child(path, "service", "name"), name, m) for m in names.is_dns1035_label(name)]
    port = as_dict(service.get("port"))
    port_name, number = as_str(port.get("name")), port.get("number") or 0
    if port_name and number:
        causes.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes += [invalid(child(path, "service", "port", "name"), port_name, m)
                   for m in names.is_valid_port_name(port_name)]
    elif number:
        field = child(path, "service", "port", "number")
        causes += [invalid(field, number, m) for m in names.is_valid_port_num(number)]
    else:
        causes.append(required(path, "port name or number is required"))
    return causes


def _validate_http_path(http_path: dict, path: str) -> list[Cause]:
    causes = []
    path_type, value = http_path.get("pathType"), as_str(http_path.get("path"))
    if path_type is None:
        causes.append(required(child(path, "pathType"), "pathType must be specified"))
    elif path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
        for sequence in _INVALID_PATH_SEQUENCES:
            if sequence in value:
                causes.append(invalid(child(path, "path"), value, f"must not contain '{sequence}'"))
        for suffix in _INVALID_PATH_SUFFIXES:
            if value.endswith(suffix):
                causes.append(invalid(child(path, "path"), value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(invalid(child(path, "path"), value, "must be an absolute path"))
    else:
        causes.append(not_supported(child(path, "pathType"), path_type, PATH_TYPES))
    return causes + _validate_backend(as_dict(http_path.get("backend")), child(path, "backend"))


def _validate_rules(rules: list, path: str) -> list[Cause]:
    causes = []
    for i, rule in enumerate(rules):
        rule, here = as_dict(rule), child(path, i)
        host = as_str(rule.get("host"))
        if host:
            if _is_ip(host):
                causes.append(invalid(child(here, "host"), host, "must be a DNS name, not an IP address"))
            causes += [invalid(child(here, "host"), host, m) for m in _host_errors(host)]
        http = rule.get("http")
        if http is not None:
            paths = as_list(as_dict(http).get("paths"))
            if not paths:
                causes.append(required(child(here, "http", "paths")))
            for j, http_path in enumerate(paths):
                causes += _validate_http_path(as_dict(http_path), child(here, "http", "paths", j))
    return causes


def _validate_tls(tls: list, path: str) -> list[Cause]:
    causes = []
    for i, entry in enumerate(tls):
        entry = as_dict(entry)
        for j, host in enumerate(as_list(entry.get("hosts"))):
            host = as_str(host)
            causes += [invalid(child(path, i, "hosts", j), host, m) for m in _host_errors(host)]
        secret = as_str(entry.get("secretName"))
        if secret:
            causes += [invalid(child(path, i, "secretName"), secret, m) for m in names.name_is_dns_subdomain(secret)]
    return causes


def validate_ingress(obj: dict) -> list[Cause]:
    spec, causes = as_dict(obj.get("spec")), []
    rules = as_list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        causes.append(invalid("spec", spec.get("rules"), "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        causes += _validate_backend(as_dict(spec["defaultBackend"]), "spec.defaultBackend")
    causes += _validate_rules(rules, "spec.rules")
    causes += _validate_tls(as_list(spec.get("tls")), "spec.tls")
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        causes += [invalid("spec.ingressClassName", class_name, m)
                   for m in names.name_is_dns_subdomain(as_str(class_name))]
    return causes


def validate_ingress_create(obj: dict) -> list[Cause]:
    """On create only (ValidateIngressCreate): the old annotation and the field must not disagree."""
    annotation = as_dict(as_dict(obj.get("metadata")).get("annotations")).get(CLASS_ANNOTATION)
    class_name = as_dict(obj.get("spec")).get("ingressClassName")
    if annotation is not None and class_name is not None and annotation != class_name:
        return [invalid(f"annotations.{CLASS_ANNOTATION}", annotation, "must match `ingressClassName` when both are "
                        "specified")]
    return []


# --- IngressClass -----------------------------------------------------------------------------------------------

def _is_domain_prefixed_path(value: str, path: str) -> list[Cause]:
    host, slash, rest = value.partition("/")
    if not slash:
        return [invalid(path, value, "must be a domain-prefixed path (such as \"acme.io/foo\")")]
    causes = [invalid(path, host, m) for m in names.is_dns1123_subdomain(host)]
    if rest and _SEGMENT_RE.fullmatch(rest) is None:
        causes.append(invalid(path, rest, "Invalid path"))
    return causes


def validate_ingress_class(obj: dict) -> list[Cause]:
    spec, causes = as_dict(obj.get("spec")), []
    controller = as_str(spec.get("controller"))
    if not controller:
        causes.append(required("spec.controller"))
    elif len(controller) > 250:
        causes.append(too_long("spec.controller", 250))
    else:
        causes += _is_domain_prefixed_path(controller, "spec.controller")
    params = spec.get("parameters")
    if params is not None:
        params, here = as_dict(params), "spec.parameters"
        for key in ("kind", "name"):
            if not as_str(params.get(key)):
                causes.append(required(child(here, key)))
        scope, namespace = params.get("scope"), params.get("namespace")
        if scope is None:
            causes.append(required(child(here, "scope")))
        elif scope not in PARAMETER_SCOPES:
            causes.append(not_supported(child(here, "scope"), scope, PARAMETER_SCOPES))
        elif scope == "Namespace" and namespace is None:
            causes.append(required(child(here, "namespace"), "`parameters.scope` is set to 'Namespace'"))
        elif scope == "Namespace":
            causes += [invalid(child(here, "namespace"), namespace, m)
                       for m in names.name_is_dns_label(as_str(namespace))]
        elif scope == "Cluster" and namespace is not None:
            causes.append(forbidden(child(here, "namespace"), "`parameters.scope` is set to 'Cluster'"))
    return causes


def validate_ingress_class_update(obj: dict, old: dict) -> list[Cause]:
    new_controller = as_dict(obj.get("spec")).get("controller")
    if new_controller != as_dict(old.get("spec")).get("controller"):
        return [immutable("spec.controller", new_controller)]
    return []


# --- NetworkPolicy ----------------------------------------------------------------------------------------------

def _validate_policy_port(port: dict, path: str) -> list[Cause]:
    causes = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        causes.append(not_supported(child(path, "protocol"), protocol, PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, int) and not isinstance(number, bool):
        causes += [invalid(child(path, "port"), number, m) for m in names.is_valid_port_num(number)]
        if end is not None:
            if isinstance(end, int) and end < number:
                causes.append(invalid(child(path, "endPort"), number, "must be greater than or equal to `port`"))
            causes += [invalid(child(path, "endPort"), end, m) for m in names.is_valid_port_num(end)]
    elif number is not None:
        if end is not None:
            causes.append(invalid(child(path, "endPort"), 0, "may not be specified when `port` is non-numeric"))
        causes += [invalid(child(path, "port"), number, m) for m in names.is_valid_port_name(as_str(number))]
    elif end is not None:
        causes.append(invalid(child(path, "endPort"), None, "may not be specified when `port` is not specified"))
    return causes


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _validate_ip_block(block: dict, path: str) -> list[Cause]:
    cidr = as_str(block.get("cidr"))
    if not cidr:
        return [required(child(path, "cidr"))]
    network = _network(cidr) if "/" in cidr else None
    if network is None:
        return [invalid(child(path, "cidr"), cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    causes = []
    for i, text in enumerate(as_list(block.get("except"))):
        text = as_str(text)
        inner = _network(text) if "/" in text else None
        here = child(path, "except", i)
        if inner is None:
            causes.append(invalid(here, text, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
        elif (inner.version != network.version or not inner.subnet_of(network)
              or inner.prefixlen <= network.prefixlen):
            causes.append(invalid(here, text, "must be a strict subset of `cidr`"))
    return causes


def _validate_peer(peer: dict, path: str) -> list[Cause]:
    causes, count = [], 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            causes += validate_label_selector(peer[key], child(path, key))
    if peer.get("ipBlock") is not None:
        count += 1
        causes += _validate_ip_block(as_dict(peer["ipBlock"]), child(path, "ipBlock"))
    if count == 0:
        causes.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        causes.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def validate_network_policy(obj: dict) -> list[Cause]:
    spec, causes = as_dict(obj.get("spec")), []
    causes += validate_label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            rule, here = as_dict(rule), child("spec", direction, i)
            for j, port in enumerate(as_list(rule.get("ports"))):
                causes += _validate_policy_port(as_dict(port), child(here, "ports", j))
            for j, peer in enumerate(as_list(rule.get(peers))):
                causes += _validate_peer(as_dict(peer), child(here, peers, j))
    types = as_list(spec.get("policyTypes"))
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            causes.append(not_supported(child("spec", "policyTypes", i), kind, POLICY_TYPES))
    if len(types) > 2:
        causes.append(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
    return causes
