"""Volume binding (kube-scheduler's VolumeBinding plugin) over the scheduler's caches of claims, volumes and
StorageClasses.

PreFilter: a pod whose claim is missing or being deleted, or unbound while its StorageClass binds
Immediately, is not scheduled at all (the PV controller must bind it first). Filter: a bound claim's
volume must allow the node (PV nodeAffinity); an unbound WaitForFirstConsumer claim needs an available
volume allowed on the node, or a class that provisions. PreBind: the chosen node goes into the claim's
volume.kubernetes.io/selected-node annotation, and the PV controller (and the provisioner) bind there.
"""

from __future__ import annotations

from kfab.objects.volumes import (NO_PROVISIONER, SELECTED_NODE, WAIT_FOR_FIRST_CONSUMER, find_best_volume,
                                  volume_allows)
from kfab.objects.meta import spec_of

UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
REASON_NO_VOLUME = "node(s) didn't find available persistent volumes to bind"


def claim_names(pod: dict) -> list[str]:
    return [v["persistentVolumeClaim"]["claimName"] for v in spec_of(pod).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
            and v["persistentVolumeClaim"].get("claimName")]


class VolumeBinding:
    def __init__(self, claims, volumes, classes):
        self.claims, self.volumes, self.classes = claims, volumes, classes

    def _waits_for_consumer(self, claim: dict) -> bool:
        sc = self.classes.get(spec_of(claim).get("storageClassName") or "")
        return bool(sc) and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER

    def prefilter(self, pod: dict) -> str:
        """"" when the pod's claims allow scheduling; else the message for every node."""
        namespace = pod["metadata"]["namespace"]
        for name in claim_names(pod):
            claim = self.claims.get_by(namespace, name)
            if claim is None:
                return f'persistentvolumeclaim "{name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{name}" is being deleted'
            if not spec_of(claim).get("volumeName") and not self._waits_for_consumer(claim):
                return UNBOUND_IMMEDIATE
        return ""

    def filter(self, pod: dict, node: dict) -> list[str]:
        namespace = pod["metadata"]["namespace"]
        for name in claim_names(pod):
            claim = self.claims.get_by(namespace, name)
            if claim is None:
                continue
            volume_name = spec_of(claim).get("volumeName")
            if volume_name:
                pv = self.volumes.get(volume_name)
                if pv is not None and not volume_allows(pv, node):
                    return [REASON_NODE_CONFLICT]
                continue
            allowed = [pv for pv in self.volumes.list() if volume_allows(pv, node)]
            if find_best_volume(claim, allowed) is not None:
                continue
            sc = self.classes.get(spec_of(claim).get("storageClassName") or "") or {}
            if (sc.get("provisioner") or NO_PROVISIONER) == NO_PROVISIONER:
                return [REASON_NO_VOLUME]
        return []

    def claims_to_select(self, pod: dict, node_name: str) -> list[dict]:
        """Unbound WaitForFirstConsumer claims that do not yet name this node."""
        namespace = pod["metadata"]["namespace"]
        out = []
        for name in claim_names(pod):
            claim = self.claims.get_by(namespace, name)
            if (claim is not None and not spec_of(claim).get("volumeName")
                    and self._waits_for_consumer(claim)
                    and (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE) != node_name):
                out.append(claim)
        return out
