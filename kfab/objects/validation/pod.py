"""Pod spec rules (pkg/apis/core/validation: ValidatePodSpec, validateContainers, ValidatePodUpdate)."""

from __future__ import annotations

import copy
import re
from decimal import Decimal, InvalidOperation

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.validation.field import (child, duplicate, forbidden, invalid, not_found, not_supported,
                                           required)
from kfab.objects.validation.meta import as_dict, as_list, as_str, validate_labels

RESTART_POLICIES = ("Always", "Never", "OnFailure")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_TOLERATION_OPERATORS = ("Equal", "Exists")
_TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")

_QUANTITY_RE = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
_SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def parse_quantity(value: object) -> Decimal | None:
    """A resource.Quantity ("500m", "1Gi", 2, "1e3") as a number; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _QUANTITY_RE.fullmatch(as_str(value))
    if not m:
        return None
    number, suffix = m.groups()
    try:
        base = Decimal(number)
        if suffix in _SUFFIXES:
            return base * Decimal(_SUFFIXES[suffix])
        if suffix[:1] in "eE":
            return base * (Decimal(10) ** int(suffix[1:]))
    except (InvalidOperation, ValueError):
        return None
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_port_num_or_name(port: object, path: str) -> list[Cause]:
    if _is_int(port):
        return [invalid(path, port, m) for m in names.is_valid_port_num(port)]
    if isinstance(port, str):
        if port.isdigit():
            return [invalid(path, port, m) for m in names.is_valid_port_num(int(port))]
        return [invalid(path, port, m) for m in names.is_valid_port_name(port)]
    return [invalid(path, port, "must contain an int or a string")]


def _validate_probe(probe: object, path: str, liveness_or_startup: bool) -> list[Cause]:
    if probe is None:
        return []
    probe = as_dict(probe)
    causes = []
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        causes.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        causes.append(forbidden(child(path, handlers[1]), "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        value = probe.get(key)
        if _is_int(value) and value < 0:
            causes.append(invalid(child(path, key), value, "must be greater than or equal to 0"))
    if liveness_or_startup and probe.get("successThreshold") not in (None, 1):
        causes.append(invalid(child(path, "successThreshold"), probe.get("successThreshold"), "must be 1"))
    http = probe.get("httpGet")
    if isinstance(http, dict):
        causes += validate_port_num_or_name(http.get("port"), child(path, "httpGet", "port"))
        if http.get("scheme") not in (None, "HTTP", "HTTPS"):
            causes.append(not_supported(child(path, "httpGet", "scheme"), http.get("scheme"), ["HTTP", "HTTPS"]))
    tcp = probe.get("tcpSocket")
    if isinstance(tcp, dict):
        causes += validate_port_num_or_name(tcp.get("port"), child(path, "tcpSocket", "port"))
    exec_ = probe.get("exec")
    if isinstance(exec_, dict) and not as_list(exec_.get("command")):
        causes.append(required(child(path, "exec", "command")))
    return causes


def _validate_resources(resources: object, path: str) -> list[Cause]:
    resources = as_dict(resources)
    causes = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("limits", "requests"):
        parsed[section] = {}
        for name, value in as_dict(resources.get(section)).items():
            number = parse_quantity(value)
            here = f"{child(path, section)}[{name}]"
            if number is None:
                causes.append(invalid(here, value, "quantities must match the regular expression "
                                      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
            elif number < 0:
                causes.append(invalid(here, value, "must be greater than or equal to 0"))
            else:
                parsed[section][name] = number
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            requested = as_dict(resources.get("requests"))[name]
            causes.append(invalid(f"{child(path, 'requests')}[{name}]", str(requested),
                                  f"must be less than or equal to {name} limit of "
                                  f"{as_dict(resources.get('limits'))[name]}"))
    return causes


def _validate_container(c: dict, path: str, volumes: set[str], names_seen: set[str]) -> list[Cause]:
    causes = []
    name = as_str(c.get("name"))
    if not name:
        causes.append(required(child(path, "name")))
    else:
        causes += [invalid(child(path, "name"), name, m) for m in names.is_dns1123_label(name)]
        if name in names_seen:
            causes.append(duplicate(child(path, "name"), name))
        names_seen.add(name)
    image = as_str(c.get("image"))
    if not image:
        causes.append(required(child(path, "image")))
    elif image != image.strip():
        causes.append(invalid(child(path, "image"), image, "must not have leading or trailing whitespace"))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        causes.append(not_supported(child(path, "imagePullPolicy"), policy, PULL_POLICIES))
    port_names: set[str] = set()
    for i, port in enumerate(as_list(c.get("ports"))):
        port, here = as_dict(port), child(path, "ports", i)
        pname = as_str(port.get("name"))
        if pname:
            causes += [invalid(child(here, "name"), pname, m) for m in names.is_valid_port_name(pname)]
            if pname in port_names:
                causes.append(duplicate(child(here, "name"), pname))
            port_names.add(pname)
        cport = port.get("containerPort")
        if not cport:
            causes.append(required(child(here, "containerPort")))
        elif _is_int(cport):
            causes += [invalid(child(here, "containerPort"), cport, m) for m in names.is_valid_port_num(cport)]
        hport = port.get("hostPort")
        if _is_int(hport) and hport != 0:
            causes += [invalid(child(here, "hostPort"), hport, m) for m in names.is_valid_port_num(hport)]
        protocol = port.get("protocol")
        if not protocol:
            causes.append(required(child(here, "protocol")))
        elif protocol not in PROTOCOLS:
            causes.append(not_supported(child(here, "protocol"), protocol, PROTOCOLS))
    for i, env in enumerate(as_list(c.get("env"))):
        env, here = as_dict(env), child(path, "env", i)
        ename = as_str(env.get("name"))
        if not ename:
            causes.append(required(child(here, "name")))
        else:
            causes += [invalid(child(here, "name"), ename, m) for m in names.is_env_var_name(ename)]
        if env.get("value") and env.get("valueFrom") is not None:
            causes.append(invalid(child(here, "valueFrom"), "", "may not be specified when `value` is not empty"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(as_list(c.get("volumeMounts"))):
        mount, here = as_dict(mount), child(path, "volumeMounts", i)
        mname = as_str(mount.get("name"))
        if not mname:
            causes.append(required(child(here, "name")))
        elif mname not in volumes:
            causes.append(not_found(child(here, "name"), mname))
        mpath = as_str(mount.get("mountPath"))
        if not mpath:
            causes.append(required(child(here, "mountPath")))
        elif mpath in mount_paths:
            causes.append(invalid(child(here, "mountPath"), mpath, "must be unique"))
        mount_paths.add(mpath)
    causes += _validate_probe(c.get("livenessProbe"), child(path, "livenessProbe"), True)
    causes += _validate_probe(c.get("readinessProbe"), child(path, "readinessProbe"), False)
    causes += _validate_probe(c.get("startupProbe"), child(path, "startupProbe"), True)
    causes += _validate_resources(c.get("resources"), child(path, "resources"))
    return causes


def _validate_volumes(volumes: object, path: str) -> tuple[list[Cause], set[str]]:
    causes, seen = [], set()
    for i, volume in enumerate(as_list(volumes)):
        volume, here = as_dict(volume), child(path, i)
        name = as_str(volume.get("name"))
        if not name:
            causes.append(required(child(here, "name")))
        else:
            causes += [invalid(child(here, "name"), name, m) for m in names.is_dns1123_label(name)]
            if name in seen:
                causes.append(duplicate(child(here, "name"), name))
            seen.add(name)
        sources = [k for k in volume if k != "name" and volume[k] is not None]
        if not sources:
            causes.append(required(here, "must specify a volume type"))
        elif len(sources) > 1:
            causes.append(forbidden(child(here, sources[1]), "may not specify more than 1 volume type"))
        for source in ("configMap", "secret"):
            src = volume.get(source)
            key = "name" if source == "configMap" else "secretName"
            if isinstance(src, dict) and not as_str(src.get(key)):
                causes.append(required(child(here, source, key)))
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and not as_str(pvc.get("claimName")):
            causes.append(required(child(here, "persistentVolumeClaim", "claimName")))
    return causes, seen


def _validate_tolerations(tolerations: object, path: str) -> list[Cause]:
    causes = []
    for i, tol in enumerate(as_list(tolerations)):
        tol, here = as_dict(tol), child(path, i)
        key, operator, effect = as_str(tol.get("key")), tol.get("operator"), tol.get("effect")
        if key:
            causes += [invalid(child(here, "key"), key, m) for m in names.is_qualified_name(key)]
        elif operator != "Exists":
            causes.append(invalid(child(here, "operator"), operator or "",
                                  "operator must be Exists when `key` is empty, which means \"match all values and "
                                  "all keys\""))
        if operator not in (None, "", *_TOLERATION_OPERATORS):
            causes.append(not_supported(child(here, "operator"), operator, _TOLERATION_OPERATORS))
        if operator == "Exists" and tol.get("value"):
            causes.append(invalid(child(here, "operator"), tol.get("value"),
                                  "value must be empty when `operator` is 'Exists'"))
        if effect not in (None, "", *_TAINT_EFFECTS):
            causes.append(not_supported(child(here, "effect"), effect, _TAINT_EFFECTS))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(invalid(child(here, "effect"), effect or "",
                                  "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return causes


def validate_pod_spec(spec: object, path: str) -> list[Cause]:
    spec = as_dict(spec)
    causes, volumes = _validate_volumes(spec.get("volumes"), child(path, "volumes"))
    containers = as_list(spec.get("containers"))
    if not containers:
        causes.append(required(child(path, "containers")))
    seen: set[str] = set()
    for i, c in enumerate(as_list(spec.get("initContainers"))):
        causes += _validate_container(as_dict(c), child(path, "initContainers", i), volumes, seen)
    for i, c in enumerate(containers):
        causes += _validate_container(as_dict(c), child(path, "containers", i), volumes, seen)
    for key, allowed in (("restartPolicy", RESTART_POLICIES), ("dnsPolicy", DNS_POLICIES)):
        value = spec.get(key)
        if value is not None and value not in allowed:
            causes.append(not_supported(child(path, key), value, allowed))
    deadline = spec.get("activeDeadlineSeconds")
    if _is_int(deadline) and not 1 <= deadline <= 2**31 - 1:
        causes.append(invalid(child(path, "activeDeadlineSeconds"), deadline,
                              names.inclusive_range_error(1, 2**31 - 1)))
    causes += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    for key in ("serviceAccountName", "nodeName"):
        value = as_str(spec.get(key))
        if value:
            causes += [invalid(child(path, key), value, m) for m in names.is_dns1123_subdomain(value)]
    for key in ("hostname", "subdomain"):
        value = as_str(spec.get(key))
        if value:
            causes += [invalid(child(path, key), value, m) for m in names.is_dns1123_label(value)]
    causes += _validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    return causes


def validate_pod_spec_update(spec: object, old_spec: object, path: str = "spec") -> list[Cause]:
    """Only images, activeDeadlineSeconds, added tolerations and terminationGracePeriodSeconds may change."""
    new, old = copy.deepcopy(as_dict(spec)), as_dict(old_spec)
    for key in ("containers", "initContainers"):
        new_list, old_list = as_list(new.get(key)), as_list(old.get(key))
        if len(new_list) == len(old_list):
            for n, o in zip(new_list, old_list):
                if isinstance(n, dict) and isinstance(o, dict) and "image" in o:
                    n["image"] = o["image"]
    causes = []
    old_deadline, new_deadline = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if old_deadline is not None and (new_deadline is None or
                                     (_is_int(new_deadline) and _is_int(old_deadline) and new_deadline > old_deadline)):
        causes.append(invalid(child(path, "activeDeadlineSeconds"), new_deadline,
                              "must be less than or equal to previous value"))
    new.pop("activeDeadlineSeconds", None)
    old = {k: v for k, v in old.items() if k != "activeDeadlineSeconds"}
    old_tolerations = as_list(old.get("tolerations"))
    if all(t in as_list(new.get("tolerations")) for t in old_tolerations):
        new["tolerations"] = old.get("tolerations")
        if new["tolerations"] is None:
            new.pop("tolerations")
    if "terminationGracePeriodSeconds" in old:
        new["terminationGracePeriodSeconds"] = old["terminationGracePeriodSeconds"]
    if new != old:
        causes.append(forbidden(path, POD_UPDATE_FORBIDDEN))
    return causes
