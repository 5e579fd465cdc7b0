"""apps/v1 rules: Deployment, ReplicaSet, StatefulSet, ControllerRevision (pkg/apis/apps/validation)."""

from __future__ import annotations

import copy

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.validation.field import child, forbidden, immutable, invalid, nonnegative, not_supported, required
from kfab.objects.validation.meta import (as_dict, as_list, as_str, selector_is_empty, selector_matches,
                                          validate_annotations, validate_label_selector, validate_labels)
from kfab.objects.validation.pod import validate_pod_spec, validate_pod_spec_update  # noqa: F401


def _validate_selector(spec: dict, kind: str) -> list[Cause]:
    selector = spec.get("selector")
    if selector is None:
        return [required("spec.selector")]
    causes = validate_label_selector(selector, "spec.selector")
    if selector_is_empty(selector):
        causes.append(invalid("spec.selector", selector, f"empty selector is invalid for {kind}"))
    return causes


def _validate_template(spec: dict, kind: str, with_pod_spec: bool) -> list[Cause]:
    template = as_dict(spec.get("template"))
    meta = as_dict(template.get("metadata"))
    labels = meta.get("labels")
    causes = []
    selector = spec.get("selector")
    # A missing selector selects nothing, so kube-apiserver reports the mismatch as well as the absence.
    if selector is None or (not selector_is_empty(selector) and not selector_matches(selector, labels)):
        causes.append(invalid("spec.template.metadata.labels", as_dict(labels),
                              "`selector` does not match template `labels`"))
    causes += validate_labels(labels, "spec.template.metadata.labels")
    causes += validate_annotations(meta.get("annotations"), "spec.template.metadata.annotations")
    pod_spec = as_dict(template.get("spec"))
    if with_pod_spec:
        causes += validate_pod_spec(pod_spec, "spec.template.spec")
    if pod_spec.get("restartPolicy") != "Always":
        causes.append(not_supported("spec.template.spec.restartPolicy", pod_spec.get("restartPolicy") or "",
                                    ["Always"]))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                                f"activeDeadlineSeconds in {kind} is not Supported"))
    return causes


def int_or_percent_value(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and not names.is_valid_percent(value):
        return int(value[:-1])
    return None


def validate_int_or_percent(value: object, path: str, at_most_100_percent: bool = False) -> list[Cause]:
    """ValidatePositiveIntOrPercent (and with at_most_100_percent, IsNotMoreThan100Percent)."""
    if isinstance(value, str):
        causes = [invalid(path, value, m) for m in names.is_valid_percent(value)]
        if at_most_100_percent and not causes and int(value[:-1]) > 100:
            causes.append(invalid(path, value, "must not be greater than 100%"))
        return causes
    if isinstance(value, int) and not isinstance(value, bool):
        return nonnegative(path, value)
    return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _validate_strategy(strategy: object) -> list[Cause]:
    strategy = as_dict(strategy)
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        return [not_supported("spec.strategy", strategy, ["Recreate", "RollingUpdate"])]
    if rolling is None:
        return [required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")]
    rolling = as_dict(rolling)
    path = "spec.strategy.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = validate_int_or_percent(unavailable, child(path, "maxUnavailable"))
    causes += validate_int_or_percent(surge, child(path, "maxSurge"))
    if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
        causes.append(invalid(child(path, "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"))
    if isinstance(unavailable, str) and (int_or_percent_value(unavailable) or 0) > 100:
        causes.append(invalid(child(path, "maxUnavailable"), unavailable, "must not be greater than 100%"))
    return causes


def validate_deployment(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = nonnegative("spec.replicas", spec.get("replicas"))
    causes += _validate_selector(spec, "deployment")
    causes += _validate_template(spec, "ReplicaSet", with_pod_spec=True)  # sic: shared with ReplicaSet
    causes += _validate_strategy(spec.get("strategy"))
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += nonnegative("spec.progressDeadlineSeconds", deadline)
        min_ready = spec.get("minReadySeconds") if isinstance(spec.get("minReadySeconds"), int) else 0
        if deadline <= min_ready:
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return causes


def validate_replica_set(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = nonnegative("spec.replicas", spec.get("replicas"))
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _validate_selector(spec, "deployment")  # sic: kube-apiserver says "deployment" for ReplicaSets too
    causes += _validate_template(spec, "ReplicaSet", with_pod_spec=True)
    return causes


def validate_stateful_set(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = as_dict(spec.get("updateStrategy"))
    kind = strategy.get("type")
    if not kind:
        causes.append(required("spec.updateStrategy"))
    elif kind == "OnDelete" and strategy.get("rollingUpdate") is not None:
        causes.append(invalid("spec.updateStrategy.rollingUpdate", strategy.get("rollingUpdate"),
                              "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        rolling = as_dict(strategy.get("rollingUpdate"))
        causes += nonnegative("spec.updateStrategy.rollingUpdate.partition", rolling.get("partition"))
    elif kind != "OnDelete":
        causes.append(invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = as_dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key)
        if value is not None and value not in ("Retain", "Delete"):
            causes.append(not_supported(child("spec", "persistentVolumeClaimRetentionPolicy", key), value,
                                        ["Retain", "Delete"]))
    causes += nonnegative("spec.replicas", spec.get("replicas"))
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    ordinals = as_dict(spec.get("ordinals"))
    causes += nonnegative("spec.ordinals.start", ordinals.get("start"))
    causes += _validate_selector(spec, "statefulset")
    # kube-apiserver checks only the template's labels and annotations for StatefulSets, not its pod spec.
    causes += _validate_template(spec, "StatefulSet", with_pod_spec=False)
    for i, claim in enumerate(as_list(spec.get("volumeClaimTemplates"))):
        claim_name = as_str(as_dict(as_dict(claim).get("metadata")).get("name"))
        if not claim_name:
            causes.append(required(child("spec", "volumeClaimTemplates", i, "metadata", "name")))
    return causes


def validate_selector_update(obj: dict, old: dict) -> list[Cause]:
    new_selector = as_dict(obj.get("spec")).get("selector")
    if new_selector != as_dict(old.get("spec")).get("selector"):
        return [immutable("spec.selector", new_selector)]
    return []


# Fields of a StatefulSet spec that may change after create (ValidateStatefulSetUpdate).
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds", "revisionHistoryLimit")


def validate_stateful_set_update(obj: dict, old: dict) -> list[Cause]:
    new_spec = copy.deepcopy(as_dict(obj.get("spec")))
    old_spec = as_dict(old.get("spec"))
    for key in _STS_MUTABLE:
        new_spec.pop(key, None)
    old_rest = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if new_spec != old_rest:
        return [forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                  "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                  "'minReadySeconds' are forbidden")]
    return []


def validate_controller_revision(obj: dict) -> list[Cause]:
    causes = [] if obj.get("data") is not None else [required("data", "data is mandatory")]
    return causes + nonnegative("revision", obj.get("revision"))


def validate_controller_revision_update(obj: dict, old: dict) -> list[Cause]:
    return [] if obj.get("data") == old.get("data") else [immutable("data", obj.get("data"))]


def _validate_daemon_set_strategy(strategy: object) -> list[Cause]:
    """ValidateDaemonSetUpdateStrategy and ValidateRollingUpdateDaemonSet."""
    strategy, path = as_dict(strategy), "spec.updateStrategy"
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [not_supported(path, strategy, ["RollingUpdate", "OnDelete"])]
    if strategy.get("rollingUpdate") is None:
        return [required(child(path, "rollingUpdate"))]
    rolling, path = as_dict(strategy.get("rollingUpdate")), child(path, "rollingUpdate")
    causes = []
    for key in ("maxUnavailable", "maxSurge"):
        causes += validate_int_or_percent(rolling.get(key), child(path, key), at_most_100_percent=True)
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    has_unavailable, has_surge = bool(int_or_percent_value(unavailable)), bool(int_or_percent_value(surge))
    if has_unavailable and has_surge:
        causes.append(invalid(child(path, "maxSurge"), surge, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        causes.append(required(child(path, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    return causes


def validate_daemon_set(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = _validate_selector(spec, "daemonset")
    causes += _validate_template(spec, "DaemonSet", with_pod_spec=True)
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    causes += _validate_daemon_set_strategy(spec.get("updateStrategy"))
    return causes
