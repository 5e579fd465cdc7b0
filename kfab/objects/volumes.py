"""PersistentVolume and claim matching that the PV controller and the scheduler's volume binding share (what
k8s.io/component-helpers/storage/volume is upstream): sizes, classes, fit, node affinity, the best volume."""

from __future__ import annotations

from kfab.objects.node_affinity import match_term
from kfab.objects.quantity import QuantityError, int_value
from kfab.objects.selectors import selector_from_object
from kfab.objects.meta import meta_of, spec_of, status_of

NO_PROVISIONER = "kubernetes.io/no-provisioner"
# The scheduler names the node of a WaitForFirstConsumer claim's first pod here; binding waits for it.
SELECTED_NODE = "volume.kubernetes.io/selected-node"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def _storage(resources: dict | None) -> int:
    try:
        return int_value(((resources or {}).get("storage")) or 0)
    except QuantityError:
        return 0


def claim_request(claim: dict) -> int:
    return _storage((spec_of(claim).get("resources") or {}).get("requests"))


def volume_capacity(pv: dict) -> int:
    return _storage(spec_of(pv).get("capacity"))


def claim_class(claim: dict) -> str:
    return spec_of(claim).get("storageClassName") or ""


def volume_class(pv: dict) -> str:
    return spec_of(pv).get("storageClassName") or ""


def claim_ref_matches(pv: dict, claim: dict) -> bool:
    ref = spec_of(pv).get("claimRef") or {}
    meta = claim["metadata"]
    return (ref.get("name") == meta["name"] and ref.get("namespace") == meta["namespace"]
            and ref.get("uid") in (None, "", meta.get("uid")))


def volume_fits(pv: dict, claim: dict) -> bool:
    """Capacity, access modes, class, volume mode and selector: may this volume serve this claim?"""
    spec, cspec = spec_of(pv), spec_of(claim)
    if volume_capacity(pv) < claim_request(claim):
        return False
    if not set(cspec.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if volume_class(pv) != claim_class(claim):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return False
    if cspec.get("selector") is not None:
        try:
            if not selector_from_object(cspec["selector"]).matches(meta_of(pv).get("labels") or {}):
                return False
        except ValueError:
            return False
    return True


def volume_allows(pv: dict, node: dict) -> bool:
    """Does the volume's nodeAffinity (spec.nodeAffinity.required) let a pod on this node use it?"""
    required = (spec_of(pv).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    return any(match_term(term, node) for term in required.get("nodeSelectorTerms") or [])


def find_best_volume(claim: dict, volumes: list[dict]) -> dict | None:
    """The volume pre-bound to the claim if it fits, else the smallest free one that fits (kube's choice)."""
    candidates = []
    for pv in volumes:
        if meta_of(pv).get("deletionTimestamp"):
            continue
        ref = spec_of(pv).get("claimRef")
        if ref:
            if claim_ref_matches(pv, claim) and volume_fits(pv, claim):
                return pv
            continue
        if status_of(pv).get("phase") not in (None, "", "Available"):
            continue
        if volume_fits(pv, claim):
            candidates.append(pv)
    return min(candidates, key=lambda pv: (volume_capacity(pv), pv["metadata"]["name"]), default=None)
