"""Deployment controller: one ReplicaSet per pod template (named <deployment>-<pod-template-hash>), revisions,
revisions and ReplicaSet bookkeeping; rollout strategies in deployment_rollout.py, status in deployment_status.py.

`kubectl rollout undo` needs nothing from here: kubectl copies an old ReplicaSet's template back into the
Deployment, this controller finds that ReplicaSet again by template (ignoring the hash label) and gives it
the next revision.
"""

from __future__ import annotations

import copy

from kfab.client import APIStatusError, rt_of
from kfab.controllers import deployment_util as du
from kfab.machinery.controller import Controller, by_controller_uid, controller_ref, now_rfc3339, owner_ref
from kfab.controllers.deployment_rollout import RolloutMixin
from kfab.controllers.deployment_status import StatusMixin
from kfab.controllers.podutil import is_active, is_available, is_ready, orphan_namespace
from kfab.controllers.replicaset import REPLICASET
from kfab.objects.selectors import selector_from_object
from kfab.objects.meta import meta_of, spec_of, status_of

DEPLOYMENT = rt_of("Deployment", "apps/v1")
POD = rt_of("Pod")


def _creation_key(rs: dict) -> tuple:
    meta = rs["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


class DeploymentController(RolloutMixin, StatusMixin, Controller):
    name = "deployment-controller"
    workers = 5

    def setup(self) -> None:
        self.deployments = self.ctx.informer(DEPLOYMENT)
        self.replicasets = self.ctx.informer(REPLICASET)
        self.pods = self.ctx.informer(POD)
        self.replicasets.add_index("controller-uid", by_controller_uid)
        self.replicasets.add_index("orphans-by-namespace", orphan_namespace)
        self.pods.add_index("controller-uid", by_controller_uid)
        self.deployments.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        owner = lambda rs, *_: self._rs_changed(rs)  # noqa: E731
        self.replicasets.add_handlers(owner, lambda old, new: (owner(old), owner(new)), owner)
        # As kube's deployment controller: pod readiness reaches us through the ReplicaSet's status update;
        # pod deletions matter directly (Recreate waits for old pods to be gone).
        self.pods.add_handlers(on_delete=self._pod_changed)
        self._counts: dict[tuple, tuple[int, tuple[int, int, int]]] = {}

    def _rs_changed(self, rs: dict) -> None:
        if controller_ref(rs) is not None:
            self.enqueue_owner(rs, "Deployment", "apps/v1")
            return
        meta = meta_of(rs)
        for d in self.deployments.list(meta.get("namespace")):  # an orphan: who may adopt it?
            try:
                if selector_from_object(spec_of(d).get("selector")).matches(meta.get("labels")):
                    self.enqueue_obj(d)
            except ValueError:
                continue

    def _pod_changed(self, pod: dict) -> None:
        """Pods matter to a Deployment through availability and (Recreate) old pods going away."""
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get_by(pod["metadata"].get("namespace"), ref["name"])
        if rs is not None:
            self.enqueue_owner(rs, "Deployment", "apps/v1")

    # --- reading state ------------------------------------------------------------------------------

    def replicasets_of(self, d: dict) -> list[dict]:
        return sorted(self.replicasets.by_index("controller-uid", d["metadata"]["uid"]), key=_creation_key)

    def pods_of(self, rs: dict) -> list[dict]:
        return self.pods.by_index("controller-uid", rs["metadata"]["uid"])

    def pod_counts(self, rs: dict | None, min_ready: int) -> tuple[int, int, int]:
        """(active, ready, available) pods of a ReplicaSet, from the pod cache (fresher than RS status);
        memoised until the pod cache changes, since one reconcile asks several times."""
        if rs is None:
            return 0, 0, 0
        memo_key = (rs["metadata"]["uid"], min_ready)
        version = self.pods.version
        hit = self._counts.get(memo_key)
        if hit is not None and hit[0] == version and min_ready == 0:
            return hit[1]
        active = ready = available = 0
        for p in self.pods_of(rs):
            if not is_active(p):
                continue
            active += 1
            if is_ready(p):
                ready += 1
                available += is_available(p, min_ready)
        if len(self._counts) > 10000:
            self._counts.clear()
        self._counts[memo_key] = (version, (active, ready, available))
        return active, ready, available

    def available_of(self, rs: dict | None, min_ready: int) -> int:
        """Available pods of a ReplicaSet that will stay: never more than its spec.replicas (the surplus is
        about to be deleted, not-ready ones first)."""
        return min(du.replicas_of(rs), self.pod_counts(rs, min_ready)[2]) if rs is not None else 0

    async def adopt_orphans(self, d: dict, selector) -> bool:
        """ReplicaSets nobody controls that match the selector become this Deployment's (e.g. after
        `kubectl delete deployment --cascade=orphan` and creating it again), as kube's ControllerRefManager."""
        adopted = False
        for rs in self.replicasets.by_index("orphans-by-namespace", d["metadata"]["namespace"]):
            meta = rs["metadata"]
            if meta.get("deletionTimestamp") or not selector.matches(meta.get("labels")):
                continue
            try:
                patched = await self.client.patch(REPLICASET, meta["namespace"], meta["name"], {"metadata": {
                    "ownerReferences": list(meta.get("ownerReferences") or []) + [owner_ref(d)],
                    "resourceVersion": meta["resourceVersion"]}})
            except APIStatusError as e:
                if e.not_found or e.conflict:
                    continue
                raise
            self.replicasets.remember_write(dict(patched, apiVersion="apps/v1", kind="ReplicaSet"))
            adopted = True
        return adopted

    def find_new(self, d: dict, rs_list: list[dict]) -> dict | None:
        template = spec_of(d).get("template") or {}
        return next((rs for rs in rs_list if du.equal_ignore_hash(spec_of(rs).get("template"), template)),
                    None)

    # --- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        d = self.deployments.get(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        spec = spec_of(d)
        try:
            selector = selector_from_object(spec.get("selector"))
        except ValueError as e:
            self.event(d, "Warning", "SelectorParsingFailed", f"invalid label selector: {e}")
            return None
        if selector.empty():
            self.event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector "
                                                     "is required.")
            return None
        if not d["metadata"].get("deletionTimestamp") and await self.adopt_orphans(d, selector):
            return 0.0  # look again with the adopted ReplicaSets in the cache
        rs_list = self.replicasets_of(d)
        if d["metadata"].get("deletionTimestamp"):
            return await self.sync_status_only(d, rs_list)
        await self.check_paused_condition(d)
        if spec.get("paused"):
            return await self.sync(d, rs_list)
        if self.is_scaling_event(d, rs_list):
            return await self.sync(d, rs_list)
        if not du.is_rolling(d):
            return await self.rollout_recreate(d, rs_list)
        return await self.rollout_rolling(d, rs_list)

    def is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        new_rs, old = self.new_and_old(d, rs_list)
        replicas = int(d["spec"].get("replicas", 1))
        for rs in [r for r in [new_rs, *old] if r is not None and du.replicas_of(r) > 0]:
            desired = ((rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS))
            if desired is not None and desired != str(replicas):
                return True
        return False

    def new_and_old(self, d: dict, rs_list: list[dict]) -> tuple[dict | None, list[dict]]:
        new_rs = self.find_new(d, rs_list)
        return new_rs, [rs for rs in rs_list if rs is not new_rs]

    # --- writes -------------------------------------------------------------------------------------

    async def write_rs(self, rs: dict) -> dict:
        updated = await self.client.update(REPLICASET, rs)
        updated = dict(updated, apiVersion="apps/v1", kind="ReplicaSet")
        self.replicasets.remember_write(updated)
        return updated

    async def write_deployment(self, d: dict) -> dict:
        updated = dict(await self.client.update(DEPLOYMENT, d), apiVersion="apps/v1", kind="Deployment")
        self.deployments.remember_write(updated)
        return updated

    async def set_revision(self, d: dict, revision: str) -> dict:
        annotations = d["metadata"].get("annotations") or {}
        if annotations.get(du.REVISION) == revision:
            return d
        d["metadata"]["annotations"] = dict(annotations, **{du.REVISION: revision})
        fresh = await self.write_deployment(d)
        d["metadata"] = fresh["metadata"]
        return d

    def rs_annotations(self, d: dict, rs: dict, new_revision: int, exists: bool) -> bool:
        """Copy the Deployment's annotations, bump the revision, set replica annotations; True if changed."""
        meta = rs["metadata"]
        before = dict(meta.get("annotations") or {})
        annotations = dict(before)
        for k, v in ((d["metadata"].get("annotations")) or {}).items():
            if k not in du.SKIP_COPY:
                annotations[k] = v
        if du.revision_of(rs) < new_revision:
            annotations[du.REVISION] = str(new_revision)
        if not exists:
            annotations[du.DESIRED_REPLICAS] = str(d["spec"].get("replicas", 1))
            annotations[du.MAX_REPLICAS] = str(int(d["spec"].get("replicas", 1)) + du.max_surge(d))
        meta["annotations"] = annotations
        return annotations != before

    async def get_all(self, d: dict, rs_list: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        """(new ReplicaSet or None, old ones), creating the new one when asked; keeps revisions in sync."""
        existing, old = self.new_and_old(d, rs_list)
        new_revision = du.max_revision(old) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = self.rs_annotations(d, rs, new_revision, exists=True)
            min_ready = d["spec"].get("minReadySeconds", 0)
            if (rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                changed = True
            if changed:
                rs = await self.write_rs(rs)
            await self.set_revision(d, rs["metadata"]["annotations"][du.REVISION])
            if self.has_deadline(d) and du.condition(d.get("status") or {}, "Progressing") is None:
                status = copy.deepcopy(status_of(d))
                du.set_condition(status, "Progressing", "True", "FoundNewReplicaSet",
                                 f'Found new replica set "{rs["metadata"]["name"]}"', now_rfc3339())
                await self.write_status(d, status)
            return rs, old
        if not create:
            return None, old
        return await self.create_new_rs(d, old, new_revision), old

    async def create_new_rs(self, d: dict, old: list[dict], new_revision: int) -> dict | None:
        status = status_of(d)
        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = du.template_hash(template, status.get("collisionCount"))
        template.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[du.HASH_LABEL] = pod_hash
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{pod_hash}", "namespace": d["metadata"]["namespace"],
                           "labels": dict(template["metadata"]["labels"]), "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = du.new_rs_replicas(d, old + [rs], rs)
        self.rs_annotations(d, rs, new_revision, exists=False)
        try:
            created = dict(await self.client.create(REPLICASET, rs), apiVersion="apps/v1", kind="ReplicaSet")
        except APIStatusError as e:
            if not e.already_exists:
                raise
            live = await self.client.get(REPLICASET, d["metadata"]["namespace"], rs["metadata"]["name"])
            ref = controller_ref(live)
            if ref and ref.get("uid") == d["metadata"]["uid"] and du.equal_ignore_hash(
                    live["spec"]["template"], d["spec"]["template"]):
                self.replicasets.remember_write(dict(live, apiVersion="apps/v1", kind="ReplicaSet"))
                return None  # our cache was behind: the next reconcile finds it
            # A hash collision with a ReplicaSet that is not ours: a new hash through collisionCount.
            new_status = copy.deepcopy(status)
            new_status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self.write_status(d, new_status)
            raise
        self.replicasets.remember_write(created)
        self.event(d, "Normal", "ScalingReplicaSet",
                   f"Scaled up replica set {created['metadata']['name']} from 0 to {created['spec']['replicas']}")
        await self.set_revision(d, str(new_revision))
        if self.has_deadline(d):
            new_status = copy.deepcopy(status_of(d))
            du.set_condition(new_status, "Progressing", "True", "NewReplicaSetCreated",
                             f'Created new replica set "{created["metadata"]["name"]}"', now_rfc3339())
            await self.write_status(d, new_status)
        return created

    async def write_status(self, d: dict, status: dict) -> None:
        body = dict(d, status=status)
        try:
            updated = await self.client.update_status(DEPLOYMENT, body)
        except APIStatusError as e:
            if e.not_found:
                return
            raise
        updated = dict(updated, apiVersion="apps/v1", kind="Deployment")
        self.deployments.remember_write(updated)
        d["metadata"], d["status"] = updated["metadata"], status_of(updated)
