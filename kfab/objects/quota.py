"""ResourceQuota arithmetic, shared by the quota admission plugin and the resourcequota controller
(k8s.io/kubernetes pkg/quota/v1/evaluator/core and the generic object-count evaluator).

`usage(rt, obj)` is what one object consumes, by quota resource name:

    Pod      pods, count/pods, requests.cpu (= cpu), requests.memory (= memory), limits.cpu, limits.memory,
             requests.<other> and limits.<other>; a finished pod (Succeeded/Failed) consumes nothing
    Service  services, count/services, services.nodeports, services.loadbalancers
    PVC      persistentvolumeclaims, count/persistentvolumeclaims, requests.storage, and per class
             <class>.storageclass.storage.k8s.io/{requests.storage,persistentvolumeclaims}
    any      count/<resource>[.<group>] (configmaps, secrets, ... also by their bare names in the core group)

Quantities keep the suffix family of the first non-zero value added, as resource.Quantity.Add does.
"""

from __future__ import annotations

from kfab.objects.quantity import Quantity, QuantityError, parse
from kfab.objects.registry import ResourceType
from kfab.objects.meta import spec_of, status_of

# Core kinds whose object count quota also names without the count/ prefix.
_BARE_COUNTS = {"pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers",
                "resourcequotas"}
# Compute resources whose quota makes every container state them (BACKWARD COMPATIBILITY in pods.go).
VALIDATION_SET = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
_STANDARD = ("cpu", "memory", "ephemeral-storage")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass")


def count_name(rt: ResourceType) -> str:
    return f"count/{rt.plural}.{rt.group}" if rt.group else f"count/{rt.plural}"


def add(total: dict[str, Quantity], name: str, amount: Quantity) -> None:
    have = total.get(name)
    if have is None or have.value == 0:  # as resource.Quantity.Add: a zero takes the other's format
        total[name] = amount if have is None else Quantity(amount.value, amount.format)
    else:
        total[name] = Quantity(have.value + amount.value, have.format)


def _quantity(value) -> Quantity | None:
    try:
        return parse(value)
    except QuantityError:
        return None


def _one() -> Quantity:
    return parse("1")


def _container_totals(spec: dict, field: str) -> dict[str, Quantity]:
    total: dict[str, Quantity] = {}
    for c in spec.get("containers") or []:
        for name, value in (((c or {}).get("resources") or {}).get(field) or {}).items():
            q = _quantity(value)
            if q is not None:
                add(total, name, q)
    for c in spec.get("initContainers") or []:  # init containers run one at a time: the largest counts
        for name, value in (((c or {}).get("resources") or {}).get(field) or {}).items():
            q = _quantity(value)
            if q is not None and (name not in total or q.value > total[name].value):
                total[name] = q
    return total


def pod_is_terminal(pod: dict) -> bool:
    return status_of(pod).get("phase") in ("Succeeded", "Failed")


def _pod_usage(pod: dict) -> dict[str, Quantity]:
    if pod_is_terminal(pod):
        return {}
    spec = spec_of(pod)
    out = {"pods": _one(), "count/pods": _one()}
    for name, q in _container_totals(spec, "requests").items():
        out[f"requests.{name}"] = q
        if name in _STANDARD:
            out[name] = q
    for name, q in _container_totals(spec, "limits").items():
        out[f"limits.{name}"] = q
    return out


def _service_usage(service: dict) -> dict[str, Quantity]:
    spec = spec_of(service)
    out = {"services": _one(), "count/services": _one()}
    kind = spec.get("type") or "ClusterIP"
    if kind in ("NodePort", "LoadBalancer"):
        out["services.nodeports"] = parse(str(sum(1 for p in spec.get("ports") or [] if p)))
    if kind == "LoadBalancer":
        out["services.loadbalancers"] = _one()
    return out


def _claim_usage(claim: dict) -> dict[str, Quantity]:
    spec = spec_of(claim)
    out = {"persistentvolumeclaims": _one(), "count/persistentvolumeclaims": _one()}
    storage = _quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
    klass = spec.get("storageClassName")
    if storage is not None:
        out["requests.storage"] = storage
        if klass:
            out[f"{klass}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    if klass:
        out[f"{klass}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = _one()
    return out


def usage(rt: ResourceType, obj: dict) -> dict[str, Quantity]:
    """What obj consumes of each quota resource name."""
    if rt.group == "" and rt.kind == "Pod":
        return _pod_usage(obj)
    if rt.group == "" and rt.kind == "Service":
        return _service_usage(obj)
    if rt.group == "" and rt.kind == "PersistentVolumeClaim":
        return _claim_usage(obj)
    out = {count_name(rt): _one()}
    if rt.group == "" and rt.plural in _BARE_COUNTS:
        out[rt.plural] = _one()
    return out


def increase(after: dict[str, Quantity], before: dict[str, Quantity]) -> dict[str, Quantity]:
    """What `after` uses beyond `before`, resource by resource (an update is charged only for growth)."""
    out = {}
    for name, amount in after.items():
        grown = amount.value - (before[name].value if name in before else 0)
        if grown > 0:
            out[name] = Quantity(grown, amount.format)
    return out


def qos_best_effort(pod: dict) -> bool:
    spec = spec_of(pod)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        resources = (c or {}).get("resources") or {}
        for field in ("requests", "limits"):
            if any(k in (resources.get(field) or {}) for k in ("cpu", "memory")):
                return False
    return True


def _scope_matches(scope: str, pod: dict, operator: str = "Exists", values: tuple = ()) -> bool:
    spec = spec_of(pod)
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope == "BestEffort":
        return qos_best_effort(pod)
    if scope == "NotBestEffort":
        return not qos_best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        return {"In": name in values, "NotIn": name not in values, "Exists": bool(name),
                "DoesNotExist": not name}.get(operator, False)
    return False


def selects(quota: dict, rt: ResourceType, obj: dict) -> bool:
    """A quota with scopes (or a scopeSelector) tracks only the pods its scopes match."""
    spec = spec_of(quota)
    scopes = [(s, "Exists", ()) for s in spec.get("scopes") or []]
    for expr in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        scopes.append((expr.get("scopeName"), expr.get("operator") or "Exists", tuple(expr.get("values") or ())))
    if not scopes:
        return True
    if not (rt.group == "" and rt.kind == "Pod"):
        return False
    return all(_scope_matches(scope, obj, operator, values) for scope, operator, values in scopes)


def missing_compute(hard: dict, pod: dict) -> str:
    """"limits.cpu for: a,b; requests.memory for: c" when a compute quota needs what containers do not state."""
    required = [name for name in VALIDATION_SET if name in hard]
    if not required:
        return ""
    missing: dict[str, list[str]] = {}
    spec = spec_of(pod)
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = (c or {}).get("resources") or {}
        have = set()
        for name in (resources.get("requests") or {}):
            have |= {name, f"requests.{name}"}
        for name in (resources.get("limits") or {}):
            have.add(f"limits.{name}")
        for name in required:
            if name not in have:
                missing.setdefault(name, []).append((c or {}).get("name", ""))
    return "; ".join(f"{name} for: {','.join(sorted(set(names)))}" for name, names in sorted(missing.items()))


def pretty(values: dict[str, Quantity | str]) -> str:
    """kube's prettyPrint: name=value pairs sorted by name, comma-separated."""
    return ",".join(f"{name}={values[name]}" for name in sorted(values))


def parse_list(values: dict | None) -> dict[str, Quantity]:
    out = {}
    for name, value in (values or {}).items():
        q = _quantity(value)
        if q is not None:
            out[name] = q
    return out


def as_strings(values: dict[str, Quantity]) -> dict[str, str]:
    return {name: str(q) for name, q in sorted(values.items())}
