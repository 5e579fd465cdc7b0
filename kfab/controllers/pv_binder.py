"""PersistentVolume binder: pair each PersistentVolumeClaim with one PersistentVolume, as kube's PV controller.

A Pending claim gets the smallest Available volume that fits it - capacity >= the request, access modes a
superset, same storageClassName and volumeMode, labels matching the claim's selector - or the volume that
was pre-bound to it (pv.spec.claimRef naming it). Binding writes pv.spec.claimRef first, then
pvc.spec.volumeName, then both phases (Bound); every step is re-derived from the objects, so a crash
half-way is finished on the next pass. When nothing fits and the claim's StorageClass has a provisioner,
the provisioner registered under that name (kfab.controllers.provisioners) creates a volume; with none
registered the claim waits, with the event Kubernetes gives. When a bound claim is deleted its volume is
Released and, with reclaimPolicy Delete, deleted (through its provisioner when it has one).
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, key_of
from kfab.controllers.provisioners import PROVISIONERS, ProvisionerRegistry
from kfab.objects.volumes import (NO_PROVISIONER, SELECTED_NODE, WAIT_FOR_FIRST_CONSUMER, claim_class,
                                  claim_ref_matches, find_best_volume, volume_allows)
from kfab.objects.meta import spec_of, status_of

PV = rt_of("PersistentVolume")
PVC = rt_of("PersistentVolumeClaim")
NODE = rt_of("Node")
STORAGE_CLASS = rt_of("StorageClass", "storage.k8s.io/v1")
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"


def _typed(obj: dict, rt) -> dict:
    return dict(obj, apiVersion=rt.api_version, kind=rt.kind)


def claim_ref(claim: dict) -> dict:
    meta = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta.get("uid"), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")}


def provisioned_volume(pv: dict, claim: dict, sc: dict, provisioner_name: str, pv_name: str) -> dict:
    """A provisioner's PersistentVolume completed as kube's PV controller does: name pvc-<claim uid>, the
    class, its reclaim policy and mount options, the claim's modes and size unless the provisioner set
    them, and a claimRef pre-binding it to the claim (external provisioners in kfab.storage_host use it too)."""
    meta = pv.setdefault("metadata", {})
    meta["name"] = pv_name
    meta.setdefault("annotations", {})[PROVISIONED_BY] = provisioner_name
    spec = pv.setdefault("spec", {})
    spec["storageClassName"] = sc["metadata"]["name"]
    spec.setdefault("persistentVolumeReclaimPolicy", sc.get("reclaimPolicy") or "Delete")
    spec.setdefault("accessModes", list(spec_of(claim).get("accessModes") or []))
    spec.setdefault("capacity", dict(((spec_of(claim).get("resources") or {}).get("requests") or {})))
    if sc.get("mountOptions"):
        spec.setdefault("mountOptions", sc["mountOptions"])
    spec["claimRef"] = claim_ref(claim)
    return pv


def volume_name_for(claim: dict) -> str:
    """The name of the volume provisioned for a claim (kube's "pvc-" + claim UID)."""
    return f"pvc-{claim['metadata']['uid']}"


class ClaimVolumeController(Controller):
    """Keys "claim:<ns>/<name>" and "volume:<name>" on one queue; setup() provides self.claims and self.volumes
    informers, subclasses sync_claim (never a deleted claim) and sync_volume (the binder, external provisioners)."""

    async def reconcile(self, key: str) -> float | None:
        kind, _, rest = key.partition(":")
        if kind == "claim":
            claim = self.claims.get(rest)
            if claim is not None and not claim["metadata"].get("deletionTimestamp"):
                await self.sync_claim(claim)
        elif kind == "volume":
            pv = self.volumes.get(rest)
            if pv is not None:
                await self.sync_volume(pv)
        return None

    async def sync_claim(self, claim: dict) -> None:
        raise NotImplementedError

    async def sync_volume(self, pv: dict) -> None:
        raise NotImplementedError


class PersistentVolumeBinder(ClaimVolumeController):
    name = "persistentvolume-controller"
    workers = 2

    def setup(self) -> None:
        self.registry: ProvisionerRegistry = self.ctx.options.get("provisioners") or PROVISIONERS
        self.volumes = self.ctx.informer(PV)
        self.claims = self.ctx.informer(PVC)
        self.classes = self.ctx.informer(STORAGE_CLASS)
        self.nodes = self.ctx.informer(NODE)
        self.claims.add_handlers(self._claim_event, lambda old, new: self._claim_event(new), self._claim_deleted)
        self.volumes.add_handlers(self._volume_event, lambda old, new: self._volume_event(new), None)
        self.classes.add_handlers(lambda sc: self._retry_pending(), lambda old, new: self._retry_pending(), None)

    # Keys: "claim:<ns>/<name>" and "volume:<name>", one queue for both kinds.
    def _claim_event(self, claim: dict) -> None:
        self.enqueue(f"claim:{key_of(claim)}")

    def _claim_deleted(self, claim: dict) -> None:
        name = spec_of(claim).get("volumeName")
        if name:
            self.enqueue(f"volume:{name}")
        for pv in self.volumes.list():
            if claim_ref_matches(pv, claim):
                self.enqueue(f"volume:{pv['metadata']['name']}")

    def _volume_event(self, pv: dict) -> None:
        self.enqueue(f"volume:{pv['metadata']['name']}")
        ref = spec_of(pv).get("claimRef")
        if ref and ref.get("namespace") and ref.get("name"):
            self.enqueue(f"claim:{ref['namespace']}/{ref['name']}")
        elif not ref:
            self._retry_pending()   # a new free volume may fit a waiting claim

    def _retry_pending(self) -> None:
        for claim in self.claims.list():
            if not spec_of(claim).get("volumeName"):
                self._claim_event(claim)

    # --- claims ----------------------------------------------------------------------------------------

    async def sync_claim(self, claim: dict) -> None:
        name = spec_of(claim).get("volumeName")
        if not name:
            await self._bind_unbound(claim)
            return
        pv = self.volumes.get(name)
        if pv is None:
            if status_of(claim).get("phase") == "Bound":
                await self._claim_status(claim, "Lost")
                self.event(claim, "Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. "
                                                          "Data on the volume is lost!")
            return
        ref = spec_of(pv).get("claimRef")
        if not ref or claim_ref_matches(pv, claim):
            if not ref or ref.get("uid") != claim["metadata"].get("uid"):
                pv = await self._set_claim_ref(pv, claim)
            await self._volume_status(pv, "Bound")
            await self._claim_bound(claim, pv)
        else:
            await self._claim_status(claim, "Lost")
            self.event(claim, "Warning", "ClaimMisbound", "Two claims are bound to the same volume, this one is "
                                                          "bound incorrectly")

    async def _bind_unbound(self, claim: dict) -> None:
        volumes = self.volumes.list()
        sc = self.classes.get(claim_class(claim)) if claim_class(claim) else None
        if sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
            node_name = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if not node_name:
                await self._claim_status(claim, "Pending")
                self.event(claim, "Normal", "WaitForFirstConsumer",
                           "waiting for first consumer to be created before binding")
                return
            node = self.nodes.get(node_name) or {"metadata": {"name": node_name}}
            volumes = [pv for pv in volumes if volume_allows(pv, node)]
        pv = find_best_volume(claim, volumes)
        if pv is not None:
            pv = await self._set_claim_ref(pv, claim)
            await self._volume_status(pv, "Bound")
            claim = await self._set_volume_name(claim, pv)
            await self._claim_bound(claim, pv)
            return
        await self._claim_status(claim, "Pending")
        class_name = claim_class(claim)
        if not class_name:
            self.event(claim, "Normal", "FailedBinding",
                       "no persistent volumes available for this claim and no storage class is set")
            return
        sc = self.classes.get(class_name)
        if sc is None:
            self.event(claim, "Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found')
            return
        provisioner_name = sc.get("provisioner") or NO_PROVISIONER
        if provisioner_name == NO_PROVISIONER:
            self.event(claim, "Normal", "FailedBinding", "no persistent volumes available for this claim")
            return
        claim = await self._annotate_provisioner(claim, provisioner_name)
        provisioner = self.registry.get(provisioner_name)
        if provisioner is None:
            self.event(claim, "Normal", "ExternalProvisioning",
                       f'waiting for a volume to be created, either by external provisioner "{provisioner_name}" '
                       "or manually created by system administrator")
            return
        await self._provision(claim, sc, provisioner_name, provisioner)

    async def _provision(self, claim: dict, sc: dict, provisioner_name: str, provisioner) -> None:
        pv_name = volume_name_for(claim)
        if self.volumes.get(pv_name) is not None:
            return  # provisioned already; binding follows from the volume's event
        self.event(claim, "Normal", "Provisioning", f'External provisioner is provisioning volume for claim '
                                                    f'"{key_of(claim)}"')
        try:
            pv = await provisioner.provision(claim, sc, pv_name)
        except Exception as e:  # noqa: BLE001 - the provisioner's failure is the claim's event, then a retry
            self.event(claim, "Warning", "ProvisioningFailed", f"failed to provision volume with StorageClass "
                                                               f'"{sc["metadata"]["name"]}": {e}')
            raise
        pv = provisioned_volume(pv, claim, sc, provisioner_name, pv_name)
        try:
            created = await self.client.create(PV, _typed(pv, PV))
        except APIStatusError as e:
            if not e.already_exists:
                raise
            return
        self.volumes.remember_write(_typed(created, PV))
        self.event(claim, "Normal", "ProvisioningSucceeded",
                   f"Successfully provisioned volume {pv_name} using {provisioner_name}")
        self._claim_event(claim)

    # --- volumes ---------------------------------------------------------------------------------------

    async def sync_volume(self, pv: dict) -> None:
        ref = spec_of(pv).get("claimRef")
        if not ref:
            await self._volume_status(pv, "Available")
            return
        claim = self.claims.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if claim is not None and ref.get("uid") and claim["metadata"].get("uid") != ref.get("uid"):
            claim = None   # a new claim with the old one's name: not ours
        if claim is None:
            if not ref.get("uid"):
                await self._volume_status(pv, "Available")   # pre-bound, waiting for its claim
                return
            if await self._claim_exists(ref):
                return  # the cache is behind; the claim's event brings us back
            await self._release(pv)
            return
        volume_name = spec_of(claim).get("volumeName")
        if volume_name == pv["metadata"]["name"]:
            await self._volume_status(pv, "Bound")
        elif not volume_name:
            self._claim_event(claim)   # binding in progress: the claim's sync finishes it
        elif (pv["metadata"].get("annotations") or {}).get(BOUND_BY_CONTROLLER) == "yes":
            await self._unbind(pv)     # the claim went to another volume: free this one

    async def _claim_exists(self, ref: dict) -> bool:
        try:
            live = await self.client.get(PVC, ref.get("namespace"), ref.get("name"))
        except APIStatusError as e:
            if e.not_found:
                return False
            raise
        return live["metadata"].get("uid") == ref.get("uid")

    async def _release(self, pv: dict) -> None:
        if status_of(pv).get("phase") != "Released":
            pv = await self._volume_status(pv, "Released")
        policy = spec_of(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy != "Delete":
            return
        provisioned_by = (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY)
        if provisioned_by:
            provisioner = self.registry.get(provisioned_by)
            if provisioner is None:
                return   # an external provisioner's volume: it deletes the storage and the PV (as in kube)
            await provisioner.delete(pv)
        try:
            await self.client.delete(PV, None, pv["metadata"]["name"], uid=pv["metadata"].get("uid"))
        except APIStatusError as e:
            if not e.not_found:
                raise
        self.volumes.remember_delete(pv)

    async def _unbind(self, pv: dict) -> None:
        meta = pv["metadata"]
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != BOUND_BY_CONTROLLER}
        body = dict(pv, metadata=dict(meta, annotations=annotations), spec=dict(pv["spec"], claimRef=None))
        body["spec"].pop("claimRef")
        updated = await self.client.update(PV, _typed(body, PV))
        await self._volume_status(_typed(updated, PV), "Available")

    # --- writes ----------------------------------------------------------------------------------------

    async def _set_claim_ref(self, pv: dict, claim: dict) -> dict:
        meta = pv["metadata"]
        annotations = dict(meta.get("annotations") or {})
        if not spec_of(pv).get("claimRef"):
            annotations[BOUND_BY_CONTROLLER] = "yes"
        body = dict(pv, metadata=dict(meta, annotations=annotations),
                    spec=dict(pv.get("spec") or {}, claimRef=claim_ref(claim)))
        updated = _typed(await self.client.update(PV, _typed(body, PV)), PV)
        self.volumes.remember_write(updated)
        return updated

    async def _set_volume_name(self, claim: dict, pv: dict) -> dict:
        meta = claim["metadata"]
        annotations = dict(meta.get("annotations") or {}, **{BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"})
        body = dict(claim, metadata=dict(meta, annotations=annotations),
                    spec=dict(claim.get("spec") or {}, volumeName=pv["metadata"]["name"]))
        updated = _typed(await self.client.update(PVC, _typed(body, PVC)), PVC)
        self.claims.remember_write(updated)
        return updated

    async def _annotate_provisioner(self, claim: dict, provisioner: str) -> dict:
        annotations = claim["metadata"].get("annotations") or {}
        if annotations.get(STORAGE_PROVISIONER) == provisioner:
            return claim
        meta = claim["metadata"]
        updated = await self.client.patch(PVC, meta["namespace"], meta["name"], {"metadata": {
            "annotations": {STORAGE_PROVISIONER: provisioner, BETA_STORAGE_PROVISIONER: provisioner}}})
        updated = _typed(updated, PVC)
        self.claims.remember_write(updated)
        return updated

    async def _claim_bound(self, claim: dict, pv: dict) -> None:
        status = dict(status_of(claim))
        want = dict(status, phase="Bound", accessModes=list(spec_of(pv).get("accessModes") or []),
                    capacity=dict(spec_of(pv).get("capacity") or {}))
        if want != status:
            updated = await self.client.update_status(PVC, dict(claim, status=want))
            self.claims.remember_write(_typed(updated, PVC))

    async def _claim_status(self, claim: dict, phase: str) -> dict:
        status = dict(status_of(claim))
        if status.get("phase") == phase:
            return claim
        updated = _typed(await self.client.update_status(PVC, dict(claim, status=dict(status, phase=phase))), PVC)
        self.claims.remember_write(updated)
        return updated

    async def _volume_status(self, pv: dict, phase: str) -> dict:
        status = dict(status_of(pv))
        if status.get("phase") == phase:
            return pv
        updated = _typed(await self.client.update_status(PV, dict(pv, status=dict(status, phase=phase))), PV)
        self.volumes.remember_write(updated)
        return updated

