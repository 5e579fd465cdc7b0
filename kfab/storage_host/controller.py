"""The external provisioner controller: the same watch -> queue -> reconcile(key) shape as every kfab
controller, run by `kfab provisioner nfs|iscsi` on the storage host.

Keys: "claim:<ns>/<name>" and "volume:<name>".
- A claim annotated `volume.kubernetes.io/storage-provisioner: <our name>` (the binder's hand-over), not yet
  bound, whose class names us and whose volume `pvc-<uid>` does not exist: check the access modes (a refusal
  is a ProvisioningFailed event, no retry), make the storage, create the PV pre-bound to the claim
  (kfab.controllers.pv_binder.provisioned_volume); the binder binds it.
- A bound claim asking for more than its volume holds, of a class with allowVolumeExpansion: grow the
  storage, then the PV's capacity; the claim gets the FileSystemResizePending condition (the node grows the
  filesystem, as the kubelet does).
- A volume we provisioned that the binder marked Released with reclaimPolicy Delete: remove the storage,
  then the PV. Retain: nothing.
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import key_of, now_rfc3339
from kfab.controllers.pv_binder import (BETA_STORAGE_PROVISIONER, PROVISIONED_BY, STORAGE_PROVISIONER,
                                        ClaimVolumeController, provisioned_volume, volume_name_for)
from kfab.objects.volumes import claim_class, claim_request, volume_capacity
from kfab.storage_host.access import ProvisioningError
from kfab.storage_host.config import ProvisionerConfig
from kfab.objects.meta import spec_of, status_of

PV = rt_of("PersistentVolume")
PVC = rt_of("PersistentVolumeClaim")
SECRET = rt_of("Secret")
STORAGE_CLASS = rt_of("StorageClass", "storage.k8s.io/v1")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def storage_class_for(config: ProvisionerConfig, can_expand: bool) -> dict:
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
          "metadata": {"name": config.storage_class, "labels": {"app.kubernetes.io/managed-by": "kfab-provisioner"}},
          "provisioner": config.provisioner, "reclaimPolicy": config.reclaim_policy,
          "volumeBindingMode": "Immediate", "allowVolumeExpansion": can_expand}
    if config.default_class:
        sc["metadata"]["annotations"] = {DEFAULT_CLASS: "true"}
    if config.mount_options:
        sc["mountOptions"] = list(config.mount_options)
    return sc


def _provisioner_of(claim: dict) -> str | None:
    annotations = claim["metadata"].get("annotations") or {}
    return annotations.get(STORAGE_PROVISIONER) or annotations.get(BETA_STORAGE_PROVISIONER)


class ExternalProvisioner(ClaimVolumeController):
    name = "external-provisioner"
    workers = 2

    def setup(self) -> None:
        self.config: ProvisionerConfig = self.ctx.options["config"]
        self.backend = self.ctx.options["backend"]
        self.name = self.config.provisioner
        self.volumes = self.ctx.informer(PV)
        self.claims = self.ctx.informer(PVC)
        self.classes = self.ctx.informer(STORAGE_CLASS)
        on_claim = lambda claim, *_: self.enqueue(f"claim:{key_of(claim)}")  # noqa: E731
        self.claims.add_handlers(on_claim, lambda old, new: on_claim(new), None)
        on_volume = lambda pv, *_: self.enqueue(f"volume:{pv['metadata']['name']}")  # noqa: E731
        self.volumes.add_handlers(on_volume, lambda old, new: on_volume(new), None)

    async def ensure_storage_class(self) -> None:
        """Create our class when it is missing; an existing one is the administrator's and stays as it is."""
        try:
            await self.client.get(STORAGE_CLASS, None, self.config.storage_class)
            return
        except APIStatusError as e:
            if not e.not_found:
                raise
        try:
            await self.client.create(STORAGE_CLASS, storage_class_for(self.config, self.backend.can_expand))
        except APIStatusError as e:
            if not e.already_exists:
                raise

    def _our_class(self, claim: dict) -> dict | None:
        sc = self.classes.get(claim_class(claim))
        return sc if sc is not None and sc.get("provisioner") == self.config.provisioner else None

    async def sync_claim(self, claim: dict) -> None:
        if _provisioner_of(claim) != self.config.provisioner:
            return
        sc = self._our_class(claim)
        if sc is None:
            return
        volume_name = spec_of(claim).get("volumeName")
        if volume_name:
            await self._maybe_expand(claim, sc, volume_name)
            return
        pv_name = volume_name_for(claim)
        if self.volumes.get(pv_name) is not None:
            return
        self.event(claim, "Normal", "Provisioning", f'External provisioner is provisioning volume for claim '
                                                    f'"{key_of(claim)}"')
        try:
            pv = await self.backend.provision(claim, sc, pv_name)
        except ProvisioningError as e:
            self.event(claim, "Warning", "ProvisioningFailed",
                       f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": {e}')
            return   # nothing to retry: the claim's spec is fixed, a new claim is needed
        except Exception as e:  # noqa: BLE001 - a failing server: an event, then a retry with backoff
            self.event(claim, "Warning", "ProvisioningFailed",
                       f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": {e}')
            raise
        if hasattr(self.backend, "chap_secret"):
            await self._ensure_secret(self.backend.chap_secret(claim["metadata"]["namespace"]))
        pv = provisioned_volume(pv, claim, sc, self.config.provisioner, pv_name)
        try:
            created = await self.client.create(PV, dict(pv, apiVersion="v1", kind="PersistentVolume"))
        except APIStatusError as e:
            if not e.already_exists:
                raise
            return
        self.volumes.remember_write(dict(created, apiVersion="v1", kind="PersistentVolume"))
        self.event(claim, "Normal", "ProvisioningSucceeded",
                   f"Successfully provisioned volume {pv_name} using {self.config.provisioner}")

    async def _ensure_secret(self, secret: dict) -> None:
        meta = secret["metadata"]
        try:
            live = await self.client.get(SECRET, meta["namespace"], meta["name"])
        except APIStatusError as e:
            if not e.not_found:
                raise
            try:
                await self.client.create(SECRET, secret, meta["namespace"])
            except APIStatusError as e2:
                if not e2.already_exists:
                    raise
            return
        if live.get("data") != secret["data"] or live.get("type") != secret["type"]:
            await self.client.update(SECRET, dict(live, data=secret["data"], type=secret["type"]))

    async def _maybe_expand(self, claim: dict, sc: dict, volume_name: str) -> None:
        pv = self.volumes.get(volume_name)
        if pv is None or (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) != self.config.provisioner:
            return
        want = claim_request(claim)
        if want <= volume_capacity(pv) or not sc.get("allowVolumeExpansion") or not self.backend.can_expand:
            return
        try:
            capacity = await self.backend.expand(pv, want)
        except ProvisioningError as e:
            self.event(claim, "Warning", "VolumeResizeFailed", str(e))
            return
        except Exception as e:  # noqa: BLE001 - e.g. a node still logged in: an event, then a retry
            self.event(claim, "Warning", "VolumeResizeFailed", str(e))
            raise
        updated = await self.client.patch(PV, None, volume_name, {"spec": {"capacity": {"storage": capacity}}})
        self.volumes.remember_write(dict(updated, apiVersion="v1", kind="PersistentVolume"))
        conditions = [c for c in status_of(claim).get("conditions") or []
                      if c.get("type") != "FileSystemResizePending"]
        conditions.append({"type": "FileSystemResizePending", "status": "True", "lastTransitionTime": now_rfc3339(),
                           "message": "Waiting for user to (re-)start a pod to finish file system resize of "
                                      "volume on node."})
        await self.client.update_status(PVC, dict(claim, status=dict(claim.get("status") or {},
                                                                     conditions=conditions)))
        self.event(claim, "Normal", "VolumeResizeSuccessful", f"resize volume {volume_name} to {capacity}")

    async def sync_volume(self, pv: dict) -> None:
        meta, spec = pv["metadata"], spec_of(pv)
        if (meta.get("annotations") or {}).get(PROVISIONED_BY) != self.config.provisioner:
            return
        if meta.get("deletionTimestamp") or status_of(pv).get("phase") != "Released":
            return
        if spec.get("persistentVolumeReclaimPolicy") != "Delete":
            return
        try:
            await self.backend.delete(pv)
        except Exception as e:  # noqa: BLE001 - the volume stays Released; an event, then a retry
            self.event(pv, "Warning", "VolumeFailedDelete", str(e))
            raise
        try:
            await self.client.delete(PV, None, meta["name"], uid=meta.get("uid"))
        except APIStatusError as e:
            if not e.not_found:
                raise
        self.volumes.remember_delete(pv)
