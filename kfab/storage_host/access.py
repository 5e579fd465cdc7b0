"""Which access modes each backend can serve, checked before anything is made for a claim."""

from __future__ import annotations
from kfab.objects.meta import spec_of

# An NFS directory mounts on any number of nodes; an iSCSI LUN carries a local filesystem (ext4), which
# only one node may mount read-write at a time.
NFS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
ISCSI_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


class ProvisioningError(Exception):
    """A claim this provisioner cannot serve as it stands (an event on the claim, no retry until it changes)."""


def check_access_modes(claim: dict, supported: tuple[str, ...], provisioner: str) -> list[str]:
    modes = list(spec_of(claim).get("accessModes") or [])
    if not modes:
        raise ProvisioningError("the claim has no spec.accessModes")
    refused = [m for m in modes if m not in supported]
    if refused:
        raise ProvisioningError(f"{provisioner} does not support access mode {', '.join(refused)} "
                                f"(supported: {', '.join(supported)})")
    return modes
