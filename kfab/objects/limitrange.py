"""LimitRange: the defaults its items get, and the LimitRanger admission plugin's work on Pods and claims
(plugin/pkg/admission/limitranger), with kube's messages.

`default_limit_range` fills an item's default/defaultRequest as SetDefaults_LimitRangeItem does;
`default_pod` gives containers the default limits/requests of Container items and returns the
`kubernetes.io/limit-ranger` annotation's text; `pod_violations` and `claim_violations` return the
messages of every min/max/maxLimitRequestRatio the object breaks.
"""

from __future__ import annotations

from decimal import Decimal

from kfab.objects.quantity import QuantityError, parse
from kfab.objects.meta import spec_of

ANNOTATION = "kubernetes.io/limit-ranger"
CONTAINER, POD, CLAIM = "Container", "Pod", "PersistentVolumeClaim"


def _items(limit_range: dict, kind: str) -> list[dict]:
    return [item for item in (spec_of(limit_range).get("limits") or [])
            if isinstance(item, dict) and item.get("type") == kind]


def default_limit_range(limit_range: dict) -> None:
    """SetDefaults_LimitRangeItem: for Container items, default <- max, defaultRequest <- default, then min."""
    for item in _items(limit_range, CONTAINER):
        default = item.setdefault("default", {}) if isinstance(item.get("default", {}), dict) else {}
        request = item.setdefault("defaultRequest", {}) if isinstance(item.get("defaultRequest", {}), dict) else {}
        for source, target in ((item.get("max"), default), (default, request), (item.get("min"), request)):
            for name, value in (source or {}).items():
                target.setdefault(name, value)
        for key in ("default", "defaultRequest"):
            if item.get(key) == {}:
                del item[key]


def _containers(spec: dict) -> list[tuple[str, dict]]:
    return [("init container" if key == "initContainers" else "container", c)
            for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def default_pod(pod: dict, limit_ranges: list[dict]) -> str:
    """Set missing container limits/requests from the first Container item's defaults; the annotation text
    ("" when nothing was set), as mergeContainerResources words it."""
    spec = spec_of(pod)
    defaults = next((item for lr in limit_ranges for item in _items(lr, CONTAINER)
                     if item.get("default") or item.get("defaultRequest")), None)
    if defaults is None:
        return ""
    notes = []
    for prefix, container in _containers(spec):
        resources = container.setdefault("resources", {})
        set_requests, set_limits = [], []
        for field, wanted, names in (("limits", defaults.get("default"), set_limits),
                                     ("requests", defaults.get("defaultRequest"), set_requests)):
            for name, value in (wanted or {}).items():
                current = resources.setdefault(field, {})
                if name not in current:
                    current[name] = value
                    names.append(name)
        for names, what in ((set_requests, "request"), (set_limits, "limit")):
            if names:
                notes.append(f"{', '.join(sorted(names))} {what} for {prefix} {container.get('name', '')}")
    return "LimitRanger plugin set: " + "; ".join(notes) if notes else ""


def _amount(value) -> Decimal | None:
    try:
        return parse(value).value
    except QuantityError:
        return None


def _text(value) -> str:
    try:
        return str(parse(value))
    except QuantityError:
        return str(value)


def _min(kind: str, name: str, enforced, requests: dict, limits: dict) -> str | None:
    if name not in requests:
        return f"minimum {name} usage per {kind} is {_text(enforced)}.  No request is specified"
    floor = _amount(enforced)
    if _amount(requests[name]) < floor:
        return f"minimum {name} usage per {kind} is {_text(enforced)}, but request is {_text(requests[name])}"
    if name in limits and _amount(limits[name]) < floor:
        return f"minimum {name} usage per {kind} is {_text(enforced)}, but limit is {_text(limits[name])}"
    return None


def _max(kind: str, name: str, enforced, requests: dict, limits: dict) -> str | None:
    if name not in limits:
        return f"maximum {name} usage per {kind} is {_text(enforced)}.  No limit is specified"
    ceiling = _amount(enforced)
    if _amount(limits[name]) > ceiling:
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but limit is {_text(limits[name])}"
    if name in requests and _amount(requests[name]) > ceiling:
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but request is {_text(requests[name])}"
    return None


def _ratio(kind: str, name: str, enforced, requests: dict, limits: dict) -> str | None:
    request, limit = _amount(requests.get(name, "0")), _amount(limits.get(name, "0"))
    if not request:
        return (f"{name} max limit to request ratio per {kind} is {_text(enforced)}, but no request is specified "
                "or request is 0")
    if not limit:
        return (f"{name} max limit to request ratio per {kind} is {_text(enforced)}, but no limit is specified or "
                "limit is 0")
    ratio = limit / request
    if ratio > _amount(enforced):
        return (f"{name} max limit to request ratio per {kind} is {_text(enforced)}, but provided ratio is "
                f"{float(ratio):f}")  # Go's %f
    return None


def _check(kind: str, item: dict, requests: dict, limits: dict) -> list[str]:
    errors = []
    for key, check in (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio)):
        for name, enforced in sorted((item.get(key) or {}).items()):
            if _amount(enforced) is None:
                continue
            error = check(kind, name, enforced, requests, limits)
            if error:
                errors.append(error)
    return errors


def _valid(resources: dict) -> dict:
    return {k: v for k, v in (resources or {}).items() if _amount(v) is not None}


def _pod_totals(spec: dict, field: str) -> dict:
    """A pod's requests or limits: the containers' sum, or an init container's when it is larger."""
    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for name, value in _valid(((c.get("resources") or {}).get(field))).items():
            total[name] = total.get(name, Decimal(0)) + _amount(value)
    for c in spec.get("initContainers") or []:
        for name, value in _valid(((c.get("resources") or {}).get(field))).items():
            total[name] = max(total.get(name, Decimal(0)), _amount(value))
    return {name: str(value) for name, value in total.items()}


def pod_violations(pod: dict, limit_ranges: list[dict]) -> list[str]:
    spec = spec_of(pod)
    errors = []
    for lr in limit_ranges:
        for item in _items(lr, CONTAINER):
            for _, container in _containers(spec):
                resources = container.get("resources") or {}
                errors += _check(CONTAINER, item, _valid(resources.get("requests")), _valid(resources.get("limits")))
        for item in _items(lr, POD):
            errors += _check(POD, item, _pod_totals(spec, "requests"), _pod_totals(spec, "limits"))
    return errors


def _max_request(kind: str, name: str, enforced, requests: dict, limits: dict) -> str | None:
    if name not in requests:
        return f"maximum {name} usage per {kind} is {_text(enforced)}.  No request is specified"
    if _amount(requests[name]) > _amount(enforced):
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but request is {_text(requests[name])}"
    return None


def claim_violations(claim: dict, limit_ranges: list[dict]) -> list[str]:
    """A claim's size is its request: both bounds are checked against it (kube's maxRequestConstraint)."""
    requests = _valid((spec_of(claim).get("resources") or {}).get("requests"))
    errors = []
    for lr in limit_ranges:
        for item in _items(lr, CLAIM):
            for key, check in (("min", _min), ("max", _max_request)):
                for name, enforced in sorted((item.get(key) or {}).items()):
                    error = check(CLAIM, name, enforced, requests, {}) if _amount(enforced) is not None else None
                    if error:
                        errors.append(error)
    return errors
