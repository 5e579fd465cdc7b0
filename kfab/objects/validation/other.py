"""Rules for RBAC, Lease, StorageClass and Event objects."""

from __future__ import annotations

from kfab.objects.errors import Cause
from kfab.objects.validation.field import child, forbidden, invalid, not_supported, required
from kfab.objects.validation.meta import as_dict, as_list, as_str

RBAC_GROUP = "rbac.authorization.k8s.io"


def validate_rules(obj: dict, namespaced: bool) -> list[Cause]:
    causes = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        rule, here = as_dict(rule), child("rules", i)
        if not as_list(rule.get("verbs")):
            causes.append(required(child(here, "verbs"), "verbs must contain at least one value"))
        urls = as_list(rule.get("nonResourceURLs"))
        if urls:
            if namespaced:
                causes.append(invalid(child(here, "nonResourceURLs"), urls,
                                      "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(invalid(child(here, "nonResourceURLs"), urls,
                                      "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not as_list(rule.get("apiGroups")):
            causes.append(required(child(here, "apiGroups"), "resource rules must supply at least one api group"))
        if not as_list(rule.get("resources")):
            causes.append(required(child(here, "resources"), "resource rules must supply at least one resource"))
    return causes


def validate_binding(obj: dict, cluster: bool) -> list[Cause]:
    causes = []
    ref = as_dict(obj.get("roleRef"))
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [RBAC_GROUP]))
    kinds = ["ClusterRole"] if cluster else ["Role", "ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not as_str(ref.get("name")):
        causes.append(required("roleRef.name"))
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        subject, here = as_dict(subject), child("subjects", i)
        if not as_str(subject.get("name")):
            causes.append(required(child(here, "name")))
        kind, group = subject.get("kind"), subject.get("apiGroup") or ""
        if kind == "ServiceAccount":
            if group:
                causes.append(not_supported(child(here, "apiGroup"), group, [""]))
            if cluster and not as_str(subject.get("namespace")):
                causes.append(required(child(here, "namespace")))
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                causes.append(not_supported(child(here, "apiGroup"), group, [RBAC_GROUP]))
        else:
            causes.append(not_supported(child(here, "kind"), kind or "", ["ServiceAccount", "User", "Group"]))
    return causes


def validate_binding_update(obj: dict, old: dict) -> list[Cause]:
    if as_dict(obj.get("roleRef")) != as_dict(old.get("roleRef")):
        return [invalid("roleRef", as_dict(obj.get("roleRef")), "cannot change roleRef")]
    return []


def validate_lease(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


def validate_storage_class(obj: dict) -> list[Cause]:
    causes = []
    if not as_str(obj.get("provisioner")):
        causes.append(required("provisioner"))
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        causes.append(not_supported("reclaimPolicy", policy, ["Delete", "Retain"]))
    mode = obj.get("volumeBindingMode")
    if mode is not None and mode not in ("Immediate", "WaitForFirstConsumer"):
        causes.append(not_supported("volumeBindingMode", mode, ["Immediate", "WaitForFirstConsumer"]))
    return causes


def validate_storage_class_update(obj: dict, old: dict) -> list[Cause]:
    causes = []
    for key in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if obj.get(key) != old.get(key):
            causes.append(forbidden(key, f"updates to {key} are forbidden."))
    return causes


def validate_event(obj: dict) -> list[Cause]:
    involved = as_dict(obj.get("involvedObject"))
    namespace = as_str(as_dict(obj.get("metadata")).get("namespace"))
    if involved.get("namespace") and namespace and involved.get("namespace") != namespace:
        return [invalid("involvedObject.namespace", involved.get("namespace"), "does not match event.namespace")]
    return []
