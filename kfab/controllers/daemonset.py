"""DaemonSet controller: one pod of the template on every node the DaemonSet selects.

As kube-controller-manager's (pkg/controller/daemon):
- a node is eligible when the template's nodeSelector and required node affinity match it and its taints are
  tolerated, the default DaemonSet tolerations included (daemonset_util.node_should_run); a node that stops
  being eligible loses its pod (an untolerated NoSchedule taint only stops new pods);
- a daemon pod is not bound by the controller: it is pinned to its node by the node affinity
  `metadata.name In [node]` and the scheduler binds it (so node resources and ports are checked as for any pod);
- a ControllerRevision per distinct template (`<ds>-<hash>`, labelled controller-revision-hash), pods labelled
  with the hash and the template generation, history trimmed to revisionHistoryLimit;
- RollingUpdate replaces old pods within maxUnavailable (delete, then create) or maxSurge (create, then delete
  the old pod once the new one is available); OnDelete waits for the user to delete pods;
- finished daemon pods are deleted (and so replaced), failed ones with an exponential back-off per node
  (1 s doubling to 15 min, as the upstream controller's failedPodsBackoff); pods left on Nodes that no longer
  exist are force-deleted here (kfab has no pod garbage collector for vanished nodes).
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.controllers.daemonset_util import (REVISION_LABEL, FailedPodsBackoff, is_updated, new_pod, new_revision,
                                             node_should_run, revision_data, surge_and_unavailable, target_node,
                                             template_generation, update_strategy)
from kfab.controllers.podutil import (BURST_REPLICAS, available_in, gather_limited, is_ready, orphan_namespace,
                                      slow_start)
from kfab.controllers.statefulset_util import revision_number, same_data
from kfab.machinery.controller import Controller, by_controller_uid, controller_ref
from kfab.objects.selectors import selector_from_object

POD = rt_of("Pod")
NODE = rt_of("Node")
DAEMONSET = rt_of("DaemonSet", "apps/v1")
REVISION = rt_of("ControllerRevision", "apps/v1")
STATUS_BATCH = 0.1  # seconds: pod status changes of many nodes are counted in one reconcile


def _typed(obj: dict, rt) -> dict:
    return dict(obj, apiVersion=rt.api_version, kind=rt.kind)


def _terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _finished(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def _oldest_first(pod: dict) -> tuple:
    # podByCreationTimestampAndPhase: scheduled pods first, then by creation time, then name
    return (not (pod.get("spec") or {}).get("nodeName"), pod["metadata"].get("creationTimestamp") or "",
            pod["metadata"]["name"])


class DaemonSetController(Controller):
    name = "daemonset-controller"
    workers = 2

    def setup(self) -> None:
        self.sets = self.ctx.informer(DAEMONSET)
        self.pods = self.ctx.informer(POD)
        self.nodes = self.ctx.informer(NODE)
        self.revisions = self.ctx.informer(REVISION)
        self.failed_backoff = FailedPodsBackoff()
        self.pods.add_index("controller-uid", by_controller_uid)
        self.pods.add_index("orphans-by-namespace", orphan_namespace)
        self.revisions.add_index("controller-uid", by_controller_uid)
        self.sets.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new), self.enqueue_obj)
        self.pods.add_handlers(self._pod_changed, lambda old, new: self._pod_changed(new, old), self._pod_changed)
        self.nodes.add_handlers(self._all_sets, self._node_updated, self._all_sets)
        on_rev = lambda rev, *_: self.enqueue_owner(rev, "DaemonSet", "apps/v1")  # noqa: E731
        self.revisions.add_handlers(on_rev, None, on_rev)

    def _pod_changed(self, pod: dict, old: dict | None = None) -> None:
        if old is not None and controller_ref(old) != controller_ref(pod):
            self._pod_changed(old)
        ref = controller_ref(pod)
        if ref is None:
            for ds in self.sets.list(pod["metadata"].get("namespace")):   # an orphan: who may adopt it
                if self._selects(ds, pod):
                    self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}", STATUS_BATCH)
        elif ref.get("kind") == "DaemonSet" and ref.get("apiVersion") == "apps/v1":
            self.queue.add_after(f"{pod['metadata'].get('namespace')}/{ref['name']}", STATUS_BATCH)

    def _all_sets(self, *_ignored) -> None:
        for ds in self.sets.list():
            self.enqueue_obj(ds)

    def _node_updated(self, old: dict, new: dict) -> None:
        # Heartbeats change only status: eligibility depends on labels, taints and unschedulable.
        def facts(node: dict) -> tuple:
            return (node["metadata"].get("labels"), (node.get("spec") or {}).get("taints"),
                    (node.get("spec") or {}).get("unschedulable"))
        if facts(old) != facts(new):
            self._all_sets()

    @staticmethod
    def _selects(ds: dict, pod: dict) -> bool:
        try:
            return selector_from_object((ds.get("spec") or {}).get("selector")).matches(
                pod["metadata"].get("labels"))
        except ValueError:
            return False

    # --- reconcile -------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ds = self.sets.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None   # its pods and revisions are the garbage collector's
        await self._adopt_orphans(ds)
        current, history = await self._revisions(ds)
        hash_ = current["metadata"]["labels"][REVISION_LABEL]
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        changed = await self._manage(ds, nodes, hash_)
        if not changed and update_strategy(ds) == "RollingUpdate":
            await self._rolling_update(ds, nodes, hash_)
        await self._truncate_history(ds, current, history)
        return await self._update_status(ds, nodes, hash_)

    def _owned_pods(self, ds: dict) -> list[dict]:
        return self.pods.by_index("controller-uid", ds["metadata"]["uid"])

    def _pods_by_node(self, ds: dict) -> dict[str, list[dict]]:
        """Live (not terminating, not finished) daemon pods by the node they run on or are pinned to."""
        by_node: dict[str, list[dict]] = {}
        for pod in self._owned_pods(ds):
            node = target_node(pod)
            if node and not _terminating(pod):
                by_node.setdefault(node, []).append(pod)
        for pods in by_node.values():
            pods.sort(key=_oldest_first)
        return by_node

    async def _adopt_orphans(self, ds: dict) -> None:
        for pod in self.pods.by_index("orphans-by-namespace", ds["metadata"]["namespace"]):
            if not controller_ref(pod) and not _terminating(pod) and self._selects(ds, pod):
                await self.adopt(ds, self.pods, pod)

    # --- pods on nodes ---------------------------------------------------------------------------------

    async def _manage(self, ds: dict, nodes: dict[str, dict], hash_: str) -> bool:
        """podsShouldBeOnNode for every node: create where missing, delete where not wanted, failed, or
        duplicated. True when anything was written."""
        surge_allowed = update_strategy(ds) == "RollingUpdate" and surge_and_unavailable(ds, len(nodes))[0] > 0
        all_pods: dict[str, list[dict]] = {}
        for pod in self._owned_pods(ds):
            all_pods.setdefault(target_node(pod) or "", []).append(pod)
        to_create, to_delete = [], []
        for name, node in nodes.items():
            should_run, may_keep = node_should_run(ds, node)
            pods = all_pods.get(name, [])
            if should_run and not pods:
                to_create.append(name)
            elif may_keep:
                running = []
                for pod in sorted(pods, key=_oldest_first):
                    if _terminating(pod):
                        continue
                    if _finished(pod):
                        if self._may_delete_finished(ds, pod, name):
                            to_delete.append(pod)
                    else:
                        running.append(pod)
                to_delete += self._duplicates(running, hash_, surge_allowed)
            else:
                to_delete += [p for p in pods if not _terminating(p)]
        # Pods of Nodes that are gone: no agent will finish a graceful deletion there (kube's pod GC
        # force-deletes them; kfab has none, so the owner does it for its own pods).
        stranded = [p for name, pods in all_pods.items() if name not in nodes for p in pods
                    if not (_terminating(p) and (p["metadata"].get("deletionGracePeriodSeconds") or 0) == 0)]
        await self._sync_nodes(ds, to_delete, to_create, hash_, stranded)
        return bool(to_create or to_delete or stranded)

    def _may_delete_finished(self, ds: dict, pod: dict, node: str) -> bool:
        """A Succeeded daemon pod goes at once; a Failed one within the failed-pods back-off (upstream's
        "fighting with a kubelet that rejects pods"), the DaemonSet looked at again when the delay is over."""
        what = f"{pod['metadata']['namespace']}/{pod['metadata']['name']} on node {node}"
        if (pod.get("status") or {}).get("phase") == "Succeeded":
            self.event(ds, "Normal", "SucceededDaemonPod", f"Found succeeded daemon pod {what}, will try to delete it")
            return True
        key = self.failed_backoff.key(ds, node)
        delay = self.failed_backoff.in_backoff(key)
        if delay > 0:
            self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}", delay)
            return False
        self.failed_backoff.next(key)
        self.event(ds, "Warning", "FailedDaemonPod", f"Found failed daemon pod {what}, will try to kill it")
        return True

    @staticmethod
    def _duplicates(running: list[dict], hash_: str, surge_allowed: bool) -> list[dict]:
        """Of several daemon pods on one node keep the oldest (while surging: the oldest new and oldest old)."""
        if not surge_allowed:
            return running[1:]
        kept_new = kept_old = None
        extra = []
        for pod in running:
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == hash_:
                if kept_new is None:
                    kept_new = pod
                    continue
            elif kept_old is None:
                kept_old = pod
                continue
            extra.append(pod)
        return extra

    async def _sync_nodes(self, ds: dict, to_delete: list[dict], to_create: list[str], hash_: str,
                          force_delete: list[dict] = ()) -> None:
        errors = []
        deletions = [(pod, None) for pod in to_delete] + [(pod, 0) for pod in force_delete]
        if deletions:
            results = await gather_limited(deletions[:BURST_REPLICAS],
                                           lambda item: self._delete_pod(ds, item[0], item[1]))
            errors += [r for r in results if isinstance(r, Exception)]
        if to_create:
            template = (ds.get("spec") or {}).get("template") or {}
            pending = list(to_create[:BURST_REPLICAS])

            async def create_one() -> None:
                pod = new_pod(ds, template, pending.pop(), hash_)
                await self.create_for(ds, self.pods, pod, "Created pod: {name}", "Error creating: {error}")

            _, error = await slow_start(len(pending), create_one)
            if error is not None:
                errors.append(error)
        if errors:
            raise errors[0]

    async def _delete_pod(self, ds: dict, pod: dict, grace_period: int | None = None) -> None:
        await self.delete_for(ds, self.pods, pod, f"Deleted pod: {pod['metadata']['name']}",
                              "Error deleting: {error}", grace_period)

    # --- rolling update --------------------------------------------------------------------------------

    async def _rolling_update(self, ds: dict, nodes: dict[str, dict], hash_: str) -> None:
        """rollingUpdate of pkg/controller/daemon/update.go: old pods go within maxUnavailable, or (maxSurge)
        a new pod starts next to the old one, which goes once the new one is available."""
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        by_node = self._pods_by_node(ds)
        wanted = [name for name, node in nodes.items() if node_should_run(ds, node)[0]]
        for name in wanted:
            by_node.setdefault(name, [])   # a node waiting for its pod counts as unavailable
        desired = len(wanted)
        max_surge, max_unavailable = surge_and_unavailable(ds, desired)
        generation = template_generation(ds)

        def available(pod: dict) -> bool:
            return available_in(pod, min_ready) == 0.0

        unavailable, surged = 0, 0
        to_delete: list[dict] = []
        replace_now: list = []      # old pods / nodes that are not available anyway: no budget needed
        candidates: list = []
        for name in sorted(by_node):
            if name not in nodes:
                continue
            pods = by_node[name]
            new = [p for p in pods if is_updated(p, hash_, generation)]
            old = [p for p in pods if not is_updated(p, hash_, generation)]
            if len(new) > 1 or len(old) > 1:
                unavailable += 1    # the manage step cleans this node up first
                continue
            new_pod_, old_pod = (new or [None])[0], (old or [None])[0]
            if max_surge == 0:
                if (old_pod is None) == (new_pod_ is None):
                    unavailable += 1
                elif new_pod_ is not None:
                    unavailable += not available(new_pod_)
                elif not available(old_pod):
                    replace_now.append(old_pod)
                elif unavailable < max_unavailable:
                    candidates.append(old_pod)
            else:
                if old_pod is None:
                    continue
                if new_pod_ is None:
                    if not available(old_pod):
                        replace_now.append(name)
                    elif surged < max_surge:
                        candidates.append(name)
                elif not available(new_pod_):
                    surged += 1
                else:
                    to_delete.append(old_pod)
        if max_surge == 0:
            budget = max(0, min(max_unavailable - unavailable, len(candidates)))
            await self._sync_nodes(ds, replace_now + candidates[:budget], [], hash_)
        else:
            budget = max(0, min(max_surge - surged, len(candidates)))
            await self._sync_nodes(ds, to_delete, replace_now + candidates[:budget], hash_)

    # --- revisions -------------------------------------------------------------------------------------

    async def _revisions(self, ds: dict) -> tuple[dict, list[dict]]:
        """constructHistory: the revision of the current template (created, or renumbered newest after a
        rollback to an earlier template) and the others."""
        owned = sorted(self.revisions.by_index("controller-uid", ds["metadata"]["uid"]), key=revision_number)
        data = revision_data(ds)
        highest = revision_number(owned[-1]) if owned else 0
        matching = [r for r in owned if same_data(r.get("data"), data)]
        if matching:
            current = matching[-1]
            if revision_number(current) < highest:
                current = _typed(await self.client.update(REVISION, _typed(dict(current, revision=highest + 1),
                                                                           REVISION)), REVISION)
                self.revisions.remember_write(current)
        else:
            current = await self._create_revision(ds, data, highest + 1)
        return current, [r for r in owned if r["metadata"]["name"] != current["metadata"]["name"]]

    async def _create_revision(self, ds: dict, data: dict, number: int) -> dict:
        collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
        revision = new_revision(ds, number, collisions)
        try:
            created = await self.client.create(REVISION, revision)
        except APIStatusError as e:
            if not e.already_exists:
                raise
            existing = await self.client.get(REVISION, ds["metadata"]["namespace"], revision["metadata"]["name"])
            if not same_data(existing.get("data"), data):
                # A hash collision with another template: count it, so the next name differs (as kube).
                await self.write_status(self.sets, ds, dict(ds.get("status") or {}, collisionCount=collisions + 1))
                raise RuntimeError(f"hash collision for ControllerRevision {revision['metadata']['name']}; "
                                   f"retrying with collisionCount {collisions + 1}") from None
            created = existing
        created = _typed(created, REVISION)
        self.revisions.remember_write(created)
        return created

    async def _truncate_history(self, ds: dict, current: dict, history: list[dict]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        live = {(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in self._owned_pods(ds)}
        unused = [r for r in history if (r["metadata"].get("labels") or {}).get(REVISION_LABEL) not in live]
        for rev in unused[:max(0, len(unused) - limit)]:
            meta = rev["metadata"]
            try:
                await self.client.delete(REVISION, meta["namespace"], meta["name"], uid=meta.get("uid"))
            except APIStatusError as e:
                if not e.not_found:
                    raise
            self.revisions.remember_delete(rev)

    # --- status ----------------------------------------------------------------------------------------

    async def _update_status(self, ds: dict, nodes: dict[str, dict], hash_: str) -> float | None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        generation = template_generation(ds)
        by_node = self._pods_by_node(ds)
        desired = current = misscheduled = ready = available = updated = 0
        pending: list[float] = []
        for name, node in nodes.items():
            should_run, _ = node_should_run(ds, node)
            pods = [p for p in by_node.get(name, []) if not _finished(p)]
            if not should_run:
                misscheduled += bool(pods)
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = pods[0]
            if is_ready(pod):
                ready += 1
                wait = available_in(pod, min_ready)
                if wait == 0.0:
                    available += 1
                elif wait is not None:
                    pending.append(wait)
            updated += is_updated(pod, hash_, generation)
        old = ds.get("status") or {}
        status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": ds["metadata"].get("generation", 1),
                  "updatedNumberScheduled": updated, "numberAvailable": available,
                  "numberUnavailable": desired - available}
        for field in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if not status[field]:
                status.pop(field)   # omitempty, as kube writes them
        for field in ("collisionCount", "conditions"):
            if old.get(field):
                status[field] = old[field]
        requeue = min(pending) + 0.05 if pending else None
        return requeue if await self.write_status(self.sets, ds, status) else None
