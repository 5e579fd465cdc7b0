"""The one shape every kfab controller has: watch -> queue of keys -> reconcile(key).

How to write a controller (see replicaset.py for a short, complete one):

    class ThingController(Controller):
        name = "thing"
        workers = 2

        def setup(self) -> None:
            # Informers are shared by every controller of the process: ask the context for them.
            self.things = self.ctx.informer(THING)
            self.pods = self.ctx.informer(POD)
            self.pods.add_index("controller-uid", by_controller_uid)
            self.things.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
            self.pods.add_handlers(...)          # map a pod event to its owner's key, then self.enqueue(key)

        async def reconcile(self, key: str) -> float | None:
            thing = self.things.get(key)         # read from the cache; None = it is gone
            ...compare desired with observed, take ONE step through self.ctx.client, return...
            return None                          # or seconds after which to look again

Rules reconcile() follows: it never assumes which event woke it (it is called after adds, updates, deletes,
resyncs, restarts, and errors alike); it re-reads everything from the informers' caches; it is idempotent.
An exception is logged and the key retried with exponential backoff (WorkQueue.add_rate_limited); a
returned number of seconds re-queues the key after that delay (e.g. a deadline to check). Two workers never
hold the same key at once. After a write, `informer.remember_write(obj)` lets the next reconcile see it before
its watch event arrives, so a controller never acts twice on a stale cache.

`self.ctx` (ControllerContext) carries the API client, the shared informers and the event recorder.
Controllers are started by kfab.controllers.manager (registered in its CONTROLLERS table).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field

from kfab.client import APIStatusError, Client
from kfab.machinery.events import EventRecorder
from kfab.machinery.informer import (Informer, InformerFactory, by_controller_uid, by_owner_uid, key_of,
                                       split_key)
from kfab.machinery.workqueue import ShutDown, WorkQueue
from kfab.objects.registry import ResourceType

__all__ = ["Controller", "ControllerContext", "Informer", "InformerFactory", "WorkQueue", "by_controller_uid",
           "by_owner_uid", "controller_ref", "key_of", "parse_time", "split_key", "now_rfc3339", "owner_ref"]

log = logging.getLogger(__name__)


@dataclass
class ControllerContext:
    client: Client
    informers: InformerFactory
    recorder: EventRecorder
    options: dict = field(default_factory=dict)  # per-controller settings, e.g. {"node-monitor-grace-period": 20}

    def informer(self, rt: ResourceType) -> Informer:
        return self.informers.informer(rt)


class Controller:
    name = "controller"
    workers = 2

    def __init__(self, ctx: ControllerContext):
        self.ctx = ctx
        self.client = ctx.client
        self.queue = WorkQueue()
        self.log = logging.getLogger(f"kfab.controllers.{self.name}")
        self.setup()

    # --- to override --------------------------------------------------------------------------------

    def setup(self) -> None:
        """Get informers from self.ctx, add indexes and handlers that enqueue keys."""

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_obj(self, obj: dict, *_ignored) -> None:
        self.queue.add(key_of(obj))

    def enqueue_owner(self, obj: dict, kind: str, api_version: str) -> None:
        """Enqueue the key of obj's controller owner when it is of this kind (e.g. a pod's ReplicaSet)."""
        ref = controller_ref(obj)
        if ref and ref.get("kind") == kind and ref.get("apiVersion") == api_version:
            ns = (obj.get("metadata") or {}).get("namespace")
            self.queue.add(f"{ns}/{ref['name']}" if ns else ref["name"])

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(obj, type_, reason, message, component=self.name)

    async def create_for(self, owner: dict, informer: Informer, obj: dict, created: str, failed: str) -> dict:
        """Create obj on behalf of `owner`, remember it in `informer`, and record kube's events on the owner:
        SuccessfulCreate `created` ({name}: the new object's) or FailedCreate `failed` ({error}), the error
        raised again. AlreadyExists is raised without an event: the cache is behind, the key is retried."""
        rt = informer.rt
        try:
            made = await self.client.create(rt, obj)
        except APIStatusError as e:
            if not e.already_exists:
                self.event(owner, "Warning", "FailedCreate", failed.format(error=e.message))
            raise
        informer.remember_write(dict(made, apiVersion=rt.api_version, kind=rt.kind))
        self.event(owner, "Normal", "SuccessfulCreate", created.format(name=made["metadata"]["name"]))
        return made

    async def adopt(self, owner: dict, informer: Informer, obj: dict) -> dict | None:
        """Make `owner` the controller of an orphan (its ownerReferences patched at the version read, as
        client-go's ClaimObject); None when it changed or went meanwhile (the next reconcile looks again)."""
        meta, rt = obj["metadata"], informer.rt
        refs = list(meta.get("ownerReferences") or []) + [owner_ref(owner)]
        try:
            adopted = await self.client.patch(rt, meta.get("namespace"), meta["name"], {"metadata": {
                "ownerReferences": refs, "resourceVersion": meta["resourceVersion"]}})
        except APIStatusError as e:
            if e.not_found or e.conflict:
                return None
            raise
        informer.remember_write(adopted)
        return adopted

    async def delete_for(self, owner: dict, informer: Informer, obj: dict, deleted: str, failed: str,
                         grace_period: int | None = None) -> None:
        """Delete obj (its uid as precondition) on behalf of `owner`, remember the outcome in `informer`, and
        record kube's events on the owner: SuccessfulDelete `deleted` or FailedDelete `failed` ({error}), the
        error raised again. Already gone counts as done, without an event."""
        meta, rt = obj["metadata"], informer.rt
        try:
            answer = await self.client.delete(rt, meta.get("namespace"), meta["name"], uid=meta.get("uid"),
                                              grace_period_seconds=grace_period)
        except APIStatusError as e:
            if e.not_found:
                informer.remember_delete(obj)
                return
            self.event(owner, "Warning", "FailedDelete", failed.format(error=e.message))
            raise
        if answer.get("kind") == rt.kind and (answer.get("metadata") or {}).get("deletionTimestamp"):
            informer.remember_write(answer)   # graceful (a pod's node agent finishes it) or held by finalizers
        else:
            informer.remember_delete(obj)
        self.event(owner, "Normal", "SuccessfulDelete", deleted)

    async def write_status(self, informer: Informer, obj: dict, status: dict) -> bool:
        """Set obj's status subresource to `status` unless it already is, and remember the write in `informer`;
        False when obj is gone meanwhile."""
        if status == (obj.get("status") or {}):
            return True
        rt = informer.rt
        try:
            updated = await self.client.update_status(rt, dict(obj, status=status))
        except APIStatusError as e:
            if e.not_found:
                return False
            raise
        informer.remember_write(dict(updated, apiVersion=rt.api_version, kind=rt.kind))
        return True

    # --- running ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the caches, then run the workers until cancelled."""
        await self.ctx.informers.wait_synced()
        workers = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            await self.queue.shutdown()
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                requeue = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - logged and retried with backoff
                if self.queue.failures(key) >= 3:
                    self.log.warning("reconciling %s failed (%d times): %s", key, self.queue.failures(key) + 1, e)
                else:
                    self.log.info("reconciling %s failed, retrying: %s", key, e, exc_info=self.log.isEnabledFor(10))
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue is not None:
                    self.queue.add_after(key, requeue)
            finally:
                self.queue.done(key)


# --- small shared helpers ---------------------------------------------------------------------------

def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: dict, block_owner_deletion: bool = True) -> dict:
    """The ownerReference a controller puts on what it creates (controller=true)."""
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": block_owner_deletion}


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
