"""Pure Deployment arithmetic, as kubernetes/pkg/controller/deployment/util: template hashes, maxSurge/
maxUnavailable resolution, revisions, proportional scaling, the completeness/progress tests."""

from __future__ import annotations

import copy
import json
import math
from kfab.objects.meta import meta_of, spec_of

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
# Deployment annotations that are not copied to its ReplicaSets (kube's skipCopyAnnotation).
SKIP_COPY = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
             MAX_REPLICAS, "deprecated.deployment.rollback.to"}
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: dict, collision_count: int | None = None) -> str:
    """The pod-template-hash label value: FNV-32a of the template (plus the collision count when set),
    safe-encoded as kube does, so names look like `nginx-5d59d67564`."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little")
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(fnv32a(data)))


def without_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = meta_of(t).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict, b: dict) -> bool:
    return without_hash(a) == without_hash(b)


def resolve_int_or_percent(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as they are, "25%" of total rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        percent = int(text[:-1])
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def rolling_params(d: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate Deployment: surge rounds up, unavailable down; both 0
    would never make progress, so unavailable becomes 1 (kube's ResolveFenceposts)."""
    spec = spec_of(d)
    rolling = ((spec.get("strategy") or {}).get("rollingUpdate")) or {}
    replicas = int(spec.get("replicas", 1))
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_rolling(d: dict) -> bool:
    return (spec_of(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_surge(d: dict) -> int:
    return rolling_params(d)[0] if is_rolling(d) else 0


def max_unavailable(d: dict) -> int:
    """kube's MaxUnavailable: 0 for Recreate or replicas 0; never more than replicas."""
    replicas = int(spec_of(d).get("replicas", 1))
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(rolling_params(d)[1], replicas)


def replicas_of(rs: dict | None) -> int:
    return int(((rs or {}).get("spec") or {}).get("replicas", 0)) if rs else 0


def revision_of(obj: dict) -> int:
    try:
        return int((meta_of(obj).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def max_revision(replicasets: list[dict]) -> int:
    return max((revision_of(rs) for rs in replicasets), default=0)


def new_rs_replicas(d: dict, all_rs: list[dict], new_rs: dict | None) -> int:
    """How big the new ReplicaSet may be now (kube's NewRSNewReplicas)."""
    replicas = int(spec_of(d).get("replicas", 1))
    if not is_rolling(d):
        return replicas
    current = replicas_of(new_rs)
    total = sum(replicas_of(rs) for rs in all_rs)
    max_total = replicas + max_surge(d)
    if total >= max_total:
        return current
    return current + max(0, min(max_total - total, replicas - current))


def replicaset_fraction(rs: dict, d: dict, status_replicas: int) -> int:
    """Proportional scaling: how many replicas this ReplicaSet gains (or loses) when the Deployment is resized
    mid-rollout (kube's getReplicaSetFraction)."""
    replicas = int(spec_of(d).get("replicas", 1))
    if replicas == 0:
        return -replicas_of(rs)
    deployment_replicas = replicas + max_surge(d)
    try:
        annotated = int((meta_of(rs).get("annotations") or {})[MAX_REPLICAS])
    except (KeyError, ValueError):
        annotated = status_replicas
    if annotated <= 0:
        return 0
    new_size = replicas_of(rs) * deployment_replicas / annotated
    return int(math.floor(new_size + 0.5)) - replicas_of(rs)


def proportion(rs: dict, d: dict, to_add: int, added: int, status_replicas: int) -> int:
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replicaset_fraction(rs, d, status_replicas)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_complete(d: dict, status: dict) -> bool:
    replicas = int(spec_of(d).get("replicas", 1))
    return (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("observedGeneration", 0) >= meta_of(d).get("generation", 0))


def is_progressing(old: dict, new: dict) -> bool:
    return (new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
            or new.get("replicas", 0) < old.get("replicas", 0)
            or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or new.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def condition(status: dict, type_: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def set_condition(status: dict, type_: str, value: str, reason: str, message: str, now: str) -> None:
    """Replace a condition; lastTransitionTime kept when the status value does not change (kube's SetCondition)."""
    old = condition(status, type_)
    if old and old.get("status") == value and old.get("reason") == reason and old.get("message") == message:
        return
    new = {"type": type_, "status": value, "lastUpdateTime": now,
           "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == value else now,
           "reason": reason, "message": message}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_] + [new]
