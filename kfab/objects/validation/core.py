"""Rules for the core kinds other than Pod and Service: Namespace, ConfigMap, Secret, PVC, PV, Node, Endpoints."""

from __future__ import annotations

import base64
import binascii
import copy

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.validation.field import (child, forbidden, immutable, invalid, not_supported, required,
                                           too_long)
from kfab.objects.validation.meta import as_dict, as_list, as_str, validate_finalizers
from kfab.objects.validation.pod import PROTOCOLS, parse_quantity

MAX_SECRET_SIZE = 1024 * 1024
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
_PV_NON_SOURCE_FIELDS = {"capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
                         "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName"}
# Secret types that need particular keys (pkg/apis/core/validation ValidateSecret).
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def validate_namespace(ns: dict) -> list[Cause]:
    return validate_finalizers(as_dict(ns.get("spec")).get("finalizers"), "spec.finalizers")


def _validate_data_keys(obj: dict, decode: bool) -> list[Cause]:
    causes, total = [], 0
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    for bag_name, bag in (("data", data), ("binaryData", binary)):
        for key, value in bag.items():
            here = f"{bag_name}[{key}]"
            causes += [invalid(here, key, m) for m in names.is_config_map_key(key)]
            if bag_name == "data" and key in binary:
                causes.append(invalid(here, key, "duplicate of key present in binaryData"))
            total += len(as_str(value))
            if (decode or bag_name == "binaryData") and isinstance(value, str):
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    causes.append(invalid(here, "<value omitted>", "must be base64 encoded data"))
    if total > MAX_SECRET_SIZE:
        causes.append(too_long("", MAX_SECRET_SIZE))
    return causes


def validate_config_map(cm: dict) -> list[Cause]:
    return _validate_data_keys(cm, decode=False)


def validate_secret(secret: dict) -> list[Cause]:
    causes = _validate_data_keys(secret, decode=True)
    data = as_dict(secret.get("data"))
    for key in _SECRET_REQUIRED_KEYS.get(as_str(secret.get("type")), ()):
        if key not in data:
            causes.append(required(f"data[{key}]"))
    if secret.get("type") == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(secret.get("metadata")).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    return causes


def validate_immutable_data_update(obj: dict, old: dict) -> list[Cause]:
    """ConfigMap/Secret with `immutable: true`: data and the flag itself are frozen; Secret type never changes."""
    causes = []
    if old.get("kind") == "Secret" and obj.get("type") != old.get("type"):
        causes.append(immutable("type", obj.get("type")))
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for bag in ("data", "binaryData"):
            if as_dict(obj.get(bag)) != as_dict(old.get(bag)):
                causes.append(forbidden(bag, "field is immutable when `immutable` is set"))
    return causes


def _validate_access_modes(modes: object, path: str) -> list[Cause]:
    modes = as_list(modes)
    if not modes:
        return [required(path, "at least 1 access mode is required")]
    causes = [not_supported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _validate_storage(resources: object, path: str) -> list[Cause]:
    storage = as_dict(resources).get("storage")
    here = f"{path}[storage]"
    if storage is None:
        return [required(here)]
    quantity = parse_quantity(storage)
    if quantity is None:
        return [invalid(here, storage, "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    if quantity <= 0:
        return [invalid(here, storage, "must be greater than zero")]
    return []


def validate_pvc_spec(spec: object, path: str = "spec") -> list[Cause]:
    spec = as_dict(spec)
    causes = _validate_access_modes(spec.get("accessModes"), child(path, "accessModes"))
    causes += _validate_storage(as_dict(spec.get("resources")).get("requests"), child(path, "resources"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    return causes


def validate_pvc(pvc: dict) -> list[Cause]:
    return validate_pvc_spec(pvc.get("spec"))


def validate_pvc_update(pvc: dict, old: dict) -> list[Cause]:
    """A claim's spec is fixed once created, except its storage request once bound (expansion; never below
    the capacity it has) and the volume the binder sets once (ValidatePersistentVolumeClaimUpdate)."""
    new_spec, old_spec = copy.deepcopy(as_dict(pvc.get("spec"))), as_dict(old.get("spec"))
    causes = []
    if as_dict(old.get("status")).get("phase") == "Bound":
        new_requests = as_dict(as_dict(new_spec.get("resources")).get("requests"))
        new_size = parse_quantity(new_requests.get("storage"))
        capacity = parse_quantity(as_dict(as_dict(old.get("status")).get("capacity")).get("storage"))
        old_size = parse_quantity(as_dict(as_dict(old_spec.get("resources")).get("requests")).get("storage"))
        if new_size is not None and old_size is not None and new_size < old_size and \
                capacity is not None and new_size <= capacity:
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
        if "storage" in new_requests:
            old_storage = as_dict(as_dict(old_spec.get("resources")).get("requests")).get("storage")
            new_spec["resources"] = copy.deepcopy(as_dict(new_spec.get("resources")))
            new_spec["resources"]["requests"] = dict(new_requests, storage=old_storage)
    if not old_spec.get("volumeName"):
        new_spec["volumeName"] = old_spec.get("volumeName")  # the binder sets it once
    new_spec = {k: v for k, v in new_spec.items() if v is not None}
    old_cmp = {k: v for k, v in old_spec.items() if v is not None}
    if new_spec != old_cmp:
        causes.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                "volumeAttributesClassName for bound claims"))
    return causes


def validate_pv(pv: dict) -> list[Cause]:
    spec = as_dict(pv.get("spec"))
    causes = _validate_access_modes(spec.get("accessModes"), "spec.accessModes")
    if not as_dict(spec.get("capacity")):
        causes.append(required("spec.capacity"))
    else:
        causes += _validate_storage(spec.get("capacity"), "spec.capacity")
    sources = [k for k in spec if k not in _PV_NON_SOURCE_FIELDS and spec[k] is not None]
    if not sources:
        causes.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        causes.append(forbidden(child("spec", sources[1]), "may not specify more than 1 volume type"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in RECLAIM_POLICIES:
        causes.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    return causes


def validate_pv_update(pv: dict, old: dict) -> list[Cause]:
    spec, old_spec = as_dict(pv.get("spec")), as_dict(old.get("spec"))
    source = {k: v for k, v in spec.items() if k not in _PV_NON_SOURCE_FIELDS}
    old_source = {k: v for k, v in old_spec.items() if k not in _PV_NON_SOURCE_FIELDS}
    causes = []
    if source != old_source:
        causes.append(forbidden("spec.persistentvolumesource",
                                "spec.persistentvolumesource is immutable after creation"))
    if old_spec.get("volumeMode") and spec.get("volumeMode") != old_spec.get("volumeMode"):
        causes.append(immutable("spec.volumeMode", spec.get("volumeMode")))
    return causes


def validate_node(node: dict) -> list[Cause]:
    spec = as_dict(node.get("spec"))
    causes = []
    for i, taint in enumerate(as_list(spec.get("taints"))):
        taint, here = as_dict(taint), child("spec", "taints", i)
        key = as_str(taint.get("key"))
        if not key:
            causes.append(required(child(here, "key")))
        else:
            causes += [invalid(child(here, "key"), key, m) for m in names.is_qualified_name(key)]
        effect = taint.get("effect")
        if effect not in ("NoExecute", "NoSchedule", "PreferNoSchedule"):
            causes.append(not_supported(child(here, "effect"), effect, ("NoExecute", "NoSchedule", "PreferNoSchedule")))
    return causes


def _validate_endpoint_ports(ports: object, path: str, need_name: bool) -> list[Cause]:
    causes = []
    for i, port in enumerate(as_list(ports)):
        port, here = as_dict(port), child(path, i)
        number = port.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            causes += [invalid(child(here, "port"), number, m) for m in names.is_valid_port_num(number)]
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            causes.append(not_supported(child(here, "protocol"), protocol, PROTOCOLS))
        if need_name and len(as_list(ports)) > 1 and not port.get("name"):
            causes.append(required(child(here, "name")))
    return causes


def validate_endpoints(ep: dict) -> list[Cause]:
    causes = []
    for i, subset in enumerate(as_list(ep.get("subsets"))):
        subset, here = as_dict(subset), child("subsets", i)
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(as_list(subset.get(key))):
                ip = as_str(as_dict(address).get("ip"))
                causes += [invalid(child(here, key, j, "ip"), ip, m) for m in names.is_valid_ip(ip)]
        causes += _validate_endpoint_ports(subset.get("ports"), child(here, "ports"), True)
    return causes


def validate_endpoint_slice(eps: dict) -> list[Cause]:
    causes = []
    address_type = eps.get("addressType")
    if not address_type:
        causes.append(required("addressType"))
    elif address_type not in ("FQDN", "IPv4", "IPv6"):
        causes.append(not_supported("addressType", address_type, ("FQDN", "IPv4", "IPv6")))
    for i, endpoint in enumerate(as_list(eps.get("endpoints"))):
        addresses = as_list(as_dict(endpoint).get("addresses"))
        here = child("endpoints", i, "addresses")
        if not addresses:
            causes.append(required(here, "must contain at least 1 address"))
        elif len(addresses) > 100:
            causes.append(invalid(here, len(addresses), "must not have more than 100 addresses"))
        if address_type in ("IPv4", "IPv6"):
            for j, ip in enumerate(addresses):
                causes += [invalid(child(here, j), ip, m) for m in names.is_valid_ip(as_str(ip))]
    causes += _validate_endpoint_ports(eps.get("ports"), "ports", False)
    return causes
