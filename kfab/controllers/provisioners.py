"""Dynamic provisioning hooks: StorageClass `provisioner` name -> how to create and delete a volume.

The PV binder calls `provision(claim, storage_class, pv_name)` for a claim no existing PersistentVolume
fits when its class names a registered provisioner; it must create the storage and return the
PersistentVolume object describing it (name `pv_name`, capacity, accessModes, the volume source); the binder
adds the class, reclaim policy, claimRef and annotations and creates it. `delete(pv)` removes the storage of
a PersistentVolume whose claim is gone and whose reclaim policy is Delete.

Nothing is registered by default: the NFS subdirectory provisioner registers itself when it is configured
(`register("kfab.io/nfs", NFSProvisioner(...))`). Claims of a class whose provisioner is not registered here
stay Pending, waiting for an external provisioner or an administrator, as in Kubernetes.
"""

from __future__ import annotations

from typing import Protocol


class Provisioner(Protocol):
    async def provision(self, claim: dict, storage_class: dict, pv_name: str) -> dict:
        """Create the storage; return the PersistentVolume that describes it."""

    async def delete(self, pv: dict) -> None:
        """Remove the storage behind a released PersistentVolume."""


class ProvisionerRegistry:
    def __init__(self) -> None:
        self._provisioners: dict[str, Provisioner] = {}

    def register(self, name: str, provisioner: Provisioner) -> None:
        self._provisioners[name] = provisioner

    def unregister(self, name: str) -> None:
        self._provisioners.pop(name, None)

    def get(self, name: str | None) -> Provisioner | None:
        return self._provisioners.get(name) if name else None

    def names(self) -> list[str]:
        return sorted(self._provisioners)


# The registry the controller-manager's PV binder uses (a ControllerContext option may supply another).
PROVISIONERS = ProvisionerRegistry()


def register(name: str, provisioner: Provisioner) -> None:
    PROVISIONERS.register(name, provisioner)
