"""The CustomResourceDefinition status the API server writes, as apiextensions-apiserver's controllers do:

- naming and establishing: acceptedNames, the NamesAccepted condition (False with PluralConflict,
  KindConflict... when another CRD of the group or a built-in resource holds a name), Established once the
  names are accepted, storedVersions;
- finalizing: a CRD being deleted (it carries `customresourcecleanup.apiextensions.k8s.io`) has every one of
  its objects deleted - objects with finalizers of their own are marked and waited for - then the finalizer
  removed, and the CRD goes.

These writes go to the store directly (compare-and-swap on the revision read), so every API server of a
cluster may run them: the second writer of the same status finds nothing to change.
"""

from __future__ import annotations

import copy
import json

from kfab.api import strategy
from kfab.objects.crd import CLEANUP_FINALIZER, accepted_names, condition, names_conflict, served_types
from kfab.objects.registry import ResourceType
from kfab.store.base import KeyNotFound, RevisionConflict, Store
from kfab.objects.meta import meta_of, spec_of, status_of


def _condition(kind: str, status: str, reason: str, message: str, old: dict | None) -> dict:
    unchanged = old is not None and old.get("status") == status
    when = old.get("lastTransitionTime") if unchanged and old.get("lastTransitionTime") else strategy.now()
    return {"type": kind, "status": status, "lastTransitionTime": when, "reason": reason, "message": message}


def desired_status(crd: dict, others: list[dict], builtin: list[ResourceType]) -> dict:
    status = copy.deepcopy(status_of(crd))
    conflict = names_conflict(crd, others, builtin)
    conditions = {c["type"]: c for c in status.get("conditions") or [] if isinstance(c, dict) and "type" in c}
    if conflict is None:
        status["acceptedNames"] = accepted_names(crd)
        conditions["NamesAccepted"] = _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found",
                                                 conditions.get("NamesAccepted"))
        conditions["Established"] = _condition("Established", "True", "InitialNamesAccepted",
                                               "the initial names have been accepted", conditions.get("Established"))
    else:
        status.setdefault("acceptedNames", {"kind": "", "plural": ""})
        conditions["NamesAccepted"] = _condition("NamesAccepted", "False", conflict[0], conflict[1],
                                                 conditions.get("NamesAccepted"))
        if condition(crd, "Established") is None or condition(crd, "Established").get("status") != "True":
            conditions["Established"] = _condition("Established", "False", "NotAccepted",
                                                   "not all names are accepted", conditions.get("Established"))
    status["conditions"] = list(conditions.values())
    storage = next((v.get("name") for v in spec_of(crd).get("versions") or [] if v.get("storage")), None)
    stored = list(status.get("storedVersions") or [])
    if storage and storage not in stored:
        stored.append(storage)
    status["storedVersions"] = stored
    return status


class CustomResourceDefinitionStatus:
    """Writes one CRD's status or finishes its deletion; called for each CRD event by CustomResourceServing."""

    def __init__(self, store: Store):
        self.store = store

    async def reconcile(self, key: str, crd: dict, revision: int, others: list[dict],
                        builtin: list[ResourceType]) -> bool:
        """One step; True when the CRD still waits for something (its objects' finalizers) and should be
        looked at again."""
        if crd["metadata"].get("deletionTimestamp"):
            return await self._finalize(key, crd, revision)
        status = desired_status(crd, others, builtin)
        if status != crd.get("status"):
            await self._write(key, dict(crd, status=status), revision)
        return False

    async def _write(self, key: str, obj: dict, revision: int) -> None:
        try:
            await self.store.update(key, strategy.encode(obj), revision)
        except (RevisionConflict, KeyNotFound):
            pass  # someone else wrote first: the watch brings their version and we look again

    async def _finalize(self, key: str, crd: dict, revision: int) -> bool:
        finalizers = list(crd["metadata"].get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            return False
        remaining = await self._delete_instances(crd)
        conditions = [c for c in status_of(crd).get("conditions") or [] if c.get("type") != "Terminating"]
        if remaining:
            conditions.append(_condition("Terminating", "True", "InstanceDeletionInProgress",
                                         "CustomResource deletion is in progress", condition(crd, "Terminating")))
            status = dict(crd.get("status") or {}, conditions=conditions)
            if status != crd.get("status"):
                await self._write(key, dict(crd, status=status), revision)
            return True
        meta = dict(crd["metadata"])
        left = [f for f in finalizers if f != CLEANUP_FINALIZER]
        if left:
            meta["finalizers"] = left
            conditions.append(_condition("Terminating", "True", "InstanceDeletionCompleted",
                                         "removed all instances", condition(crd, "Terminating")))
            await self._write(key, dict(crd, metadata=meta, status=dict(crd.get("status") or {},
                                                                          conditions=conditions)), revision)
            return False
        try:
            await self.store.delete(key, revision)
        except (RevisionConflict, KeyNotFound):
            pass
        return False

    async def _delete_instances(self, crd: dict) -> int:
        """Delete the CRD's objects (marking those with finalizers); returns how many are still there."""
        types = served_types(dict(crd, spec=dict(crd.get("spec") or {}, versions=[
            dict(v, served=True) for v in spec_of(crd).get("versions") or []][:1])))
        if not types:
            return 0
        kvs, _ = await self.store.list(types[0].store_prefix())
        remaining = 0
        for kv in kvs:
            obj = json.loads(kv.value)
            meta = meta_of(obj)
            try:
                if meta.get("finalizers"):
                    remaining += 1
                    if not meta.get("deletionTimestamp"):
                        meta.update(deletionTimestamp=strategy.now(), deletionGracePeriodSeconds=0)
                        await self.store.update(kv.key, strategy.encode(obj), kv.mod_revision)
                else:
                    await self.store.delete(kv.key, kv.mod_revision)
            except (RevisionConflict, KeyNotFound):
                remaining += 1
        return remaining
