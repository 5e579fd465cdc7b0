"""Which node an RWO iSCSI volume is attached to.

Two nodes logged in to one LUN and both mounting its ext4 would corrupt it, so a node takes the volume with
an atomic claim before it logs in: a Lease `kfab-attach-<hash>` in kube-node-lease whose holder is the node
(the API's create succeeds for exactly one of two racing nodes — the podCIDR claim's pattern). The node gives
it back after it logged out. A claim held by a Node that no longer exists is taken over (a deleted node can
not detach). What is attached is also published in the Node's status as Kubernetes has it —
`volumesAttached` (name, devicePath) and `volumesInUse` — so `kubectl get node -o yaml` shows it.
"""

from __future__ import annotations

import hashlib
import logging

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import spec_of

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
VOLUME_ANNOTATION = "kfab.io/attached-volume"
LEASES = rt_of("Lease", "coordination.k8s.io/v1")
NODES = rt_of("Node")


class MultiAttachError(Exception):
    """The volume is attached to another node; the message is the event the user sees."""


def lease_name(unique_name: str) -> str:
    return "kfab-attach-" + hashlib.sha256(unique_name.encode()).hexdigest()[:20]


def node_volume_status(attached: dict[str, str]) -> dict:
    """Node status fields for unique volume name -> device path."""
    names = sorted(attached)
    return {"volumesAttached": [{"name": n, "devicePath": attached[n]} for n in names], "volumesInUse": names}


class Attachments:
    def __init__(self, client: Client | None, node_name: str):
        self.client, self.node_name = client, node_name

    async def claim(self, unique_name: str, display: str) -> None:
        """Take the volume for this node, or raise MultiAttachError naming the node that has it."""
        if self.client is None:
            return
        name = lease_name(unique_name)
        body = {"metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                             "annotations": {VOLUME_ANNOTATION: unique_name}},
                "spec": {"holderIdentity": self.node_name}}
        try:
            await self.client.create(LEASES, body)
            return
        except APIStatusError as e:
            if not e.already_exists:
                raise
        lease = await self.client.get(LEASES, LEASE_NAMESPACE, name)
        holder = spec_of(lease).get("holderIdentity")
        if holder == self.node_name:
            return
        if holder and await self._node_exists(holder):
            raise MultiAttachError(f'Multi-Attach error for volume "{display}" Volume is already exclusively '
                                   f'attached to one node ({holder}) and can\'t be attached to another')
        log.info("taking over %s from node %s, which no longer exists", unique_name, holder)
        lease["spec"] = {**spec_of(lease), "holderIdentity": self.node_name}
        try:
            await self.client.update(LEASES, lease)  # carries resourceVersion: one winner
        except APIStatusError as e:
            if e.code == 409:
                raise MultiAttachError(f'Multi-Attach error for volume "{display}": another node took it '
                                       f'just now') from None
            raise

    async def release(self, unique_name: str) -> None:
        if self.client is None:
            return
        name = lease_name(unique_name)
        try:
            lease = await self.client.get(LEASES, LEASE_NAMESPACE, name)
            if spec_of(lease).get("holderIdentity") == self.node_name:
                await self.client.delete(LEASES, LEASE_NAMESPACE, name,
                                         resource_version=lease["metadata"].get("resourceVersion"))
        except APIStatusError as e:
            if not (e.not_found or e.code == 409):
                raise

    async def publish(self, attached: dict[str, str]) -> None:
        if self.client is None:
            return
        await self.client.patch(NODES, None, self.node_name, {"status": node_volume_status(attached)}, "merge",
                                subresource="status")

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(NODES, None, name)
            return True
        except APIStatusError as e:
            if e.not_found:
                return False
            raise
