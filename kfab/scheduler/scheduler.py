"""The scheduler: pending pods -> filter nodes -> score -> bind, on the shared controller base.

One key per pending pod on the work queue; reconcile(key) decides for that pod against a cache of nodes and
of what the pods already placed on them request. Deciding is sequential (one worker) and cheap; binding is a
POST to pods/binding that runs concurrently in the background, the pod "assumed" on its node in the cache
meanwhile so the next decision already sees it (kube-scheduler's assume/bind split). A failed bind forgets
the assumption and retries the pod with backoff.

A pod no node fits may preempt lower-priority pods (kfab.scheduler.preemption): the victims get the
DisruptionTarget condition and are deleted, the pod is nominated to their node (status.nominatedNodeName,
whose room lower-priority pods may not take meanwhile) and placed once they are gone. Otherwise it gets
PodScheduled=False/Unschedulable with kube-scheduler's message ("0/3 nodes are available: 3 Insufficient
cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.") and a
FailedScheduling event; it is tried again when a node is added or changes in a way that matters, when a
placed pod goes away, and every RETRY_UNSCHEDULABLE seconds. Pods with PersistentVolumeClaims go through
volume binding (kfab.scheduler.volume_binding) first.
"""

from __future__ import annotations

import asyncio

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, ControllerContext, key_of, now_rfc3339
from kfab.objects.registry import REGISTRY
from kfab.scheduler import preemption
from kfab.scheduler.filters import node_fit_reasons, unschedulable_message
from kfab.scheduler.nodeinfo import NodeInfo, PodUsage
from kfab.scheduler.scores import select_node
from kfab.scheduler.volume_binding import SELECTED_NODE, VolumeBinding
from kfab.objects.meta import meta_of, spec_of, status_of

POD = rt_of("Pod")
NODE = rt_of("Node")
PVC, PV = rt_of("PersistentVolumeClaim"), rt_of("PersistentVolume")
STORAGE_CLASS = rt_of("StorageClass", "storage.k8s.io/v1")
PDB = REGISTRY.by_kind("policy/v1", "PodDisruptionBudget")
DEFAULT_SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE = 30.0
BIND_CONCURRENCY = 64


def _pod_node(pod: dict) -> str | None:
    return spec_of(pod).get("nodeName") or None


def _terminal(pod: dict) -> bool:
    return status_of(pod).get("phase") in ("Succeeded", "Failed")


def _node_facts(node: dict) -> tuple:
    """What about a Node can turn "does not fit" into "fits"."""
    spec, status = spec_of(node), status_of(node)
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return (meta_of(node).get("labels"), spec.get("taints"), spec.get("unschedulable"),
            status.get("allocatable"), ready)


class Scheduler(Controller):
    name = DEFAULT_SCHEDULER_NAME
    workers = 1   # decisions are sequential so each sees the previous one; binds run concurrently

    def __init__(self, ctx: ControllerContext, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 bind_concurrency: int = BIND_CONCURRENCY):
        self.scheduler_name = scheduler_name
        self.infos: dict[str, NodeInfo] = {}          # node name -> what is placed there (even before the Node shows)
        self.placed: dict[str, tuple[str, PodUsage]] = {}  # pod key -> (node, usage) counted in infos
        self.assumed: set[str] = set()                # decided, binding in flight or not yet seen bound
        self.unschedulable: set[str] = set()
        self.nominated: dict[str, tuple[str, PodUsage, int]] = {}  # pod key -> (node, usage, priority)
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._binds: set[asyncio.Task] = set()
        self.bound = 0                                # binds that succeeded (for benchmarks and logs)
        super().__init__(ctx)

    def setup(self) -> None:
        self.pods = self.ctx.informer(POD)
        self.nodes = self.ctx.informer(NODE)
        self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handlers(self._node_added, self._node_updated, self._node_deleted)
        self.claims = self.ctx.informer(PVC)
        volumes, classes = self.ctx.informer(PV), self.ctx.informer(STORAGE_CLASS)
        self.volume_binding = VolumeBinding(self.claims, volumes, classes)
        # A claim made or bound, a volume or class added: pods waiting on volume binding may fit now.
        for informer in (self.claims, volumes, classes):
            informer.add_handlers(lambda obj: self._retry_unschedulable(),
                                  lambda old, new: self._retry_unschedulable(), None)
        self.budgets = self.ctx.informer(PDB) if PDB is not None else None

    # --- the cache of placed pods ----------------------------------------------------------------------

    def _info(self, node_name: str) -> NodeInfo:
        info = self.infos.get(node_name)
        if info is None:
            info = self.infos[node_name] = NodeInfo({"metadata": {"name": node_name}})
        return info

    def _place(self, key: str, node_name: str, usage: PodUsage) -> None:
        self._unplace(key)
        self._info(node_name).add(usage)
        self.placed[key] = (node_name, usage)

    def _unplace(self, key: str) -> bool:
        previous = self.placed.pop(key, None)
        if previous is None:
            return False
        node_name, usage = previous
        self.infos[node_name].remove(usage)
        return True

    def _account(self, pod: dict) -> None:
        key = key_of(pod)
        node_name = _pod_node(pod)
        nominated = status_of(pod).get("nominatedNodeName")
        if nominated and not node_name and not _terminal(pod):
            self.nominated[key] = (nominated, PodUsage.of(pod), preemption.priority_of(pod))
        else:
            self.nominated.pop(key, None)
        if node_name:
            self.assumed.discard(key)
            if _terminal(pod):
                if self._unplace(key):
                    self._retry_unschedulable()
            else:
                self._place(key, node_name, PodUsage.of(pod))
        elif key not in self.assumed:
            self._unplace(key)

    def _wants_scheduling(self, pod: dict) -> bool:
        spec, meta = spec_of(pod), meta_of(pod)
        return (not spec.get("nodeName") and not meta.get("deletionTimestamp") and not _terminal(pod)
                and (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name)

    # --- events -> keys ----------------------------------------------------------------------------------

    def _pod_added(self, pod: dict) -> None:
        self._account(pod)
        if self._wants_scheduling(pod):
            self.enqueue_obj(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        self._account(new)
        if self._wants_scheduling(new):
            key = key_of(new)
            # An unschedulable pod's own status write must not wake it; a changed spec or labels do.
            if key not in self.unschedulable or old.get("spec") != new.get("spec") or \
                    meta_of(old).get("labels") != meta_of(new).get("labels"):
                self.enqueue(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = key_of(pod)
        self.assumed.discard(key)
        self.unschedulable.discard(key)
        self.nominated.pop(key, None)
        if self._unplace(key):
            self._retry_unschedulable()

    def _node_added(self, node: dict) -> None:
        self._info(node["metadata"]["name"]).set_node(node)
        self._retry_unschedulable()

    def _node_updated(self, old: dict, new: dict) -> None:
        self._info(new["metadata"]["name"]).set_node(new)
        if _node_facts(old) != _node_facts(new):
            self._retry_unschedulable()

    def _node_deleted(self, node: dict) -> None:
        name = node["metadata"]["name"]
        info = self.infos.get(name)
        if info is not None and info.pod_count <= 0:
            del self.infos[name]

    def _retry_unschedulable(self) -> None:
        for key in self.unschedulable:
            self.enqueue(key)

    # --- deciding ----------------------------------------------------------------------------------------

    def candidates(self) -> list[NodeInfo]:
        return [self.infos[k] for k in self.nodes.keys() if k in self.infos]

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not self._wants_scheduling(pod):
            self.unschedulable.discard(key)
            return None
        if key in self.assumed:
            return None  # a bind for it is in flight
        usage = PodUsage.of(pod)
        nodes = self.candidates()
        volumes_say = self.volume_binding.prefilter(pod)
        if volumes_say and nodes:
            # Fails before any node is looked at (PreFilter): no node can help, neither can preemption.
            self.unschedulable.add(key)
            n = len(nodes)
            await self._mark_unschedulable(pod, f"0/{n} nodes are available: {volumes_say}. " +
                                           preemption.postfilter_message(n, {preemption.NOT_HELPFUL: n}))
            return RETRY_UNSCHEDULABLE
        feasible, reasons = [], {}
        for info in nodes:
            why = (node_fit_reasons(pod, self._with_nominated(info, key, pod), usage)
                   or self.volume_binding.filter(pod, info.node))
            if why:
                reasons[info.name] = why
            else:
                feasible.append(info)
        if not feasible:
            self.unschedulable.add(key)
            message = unschedulable_message(len(nodes), reasons)
            outcome = await self._preempt(pod, usage, nodes, reasons) if nodes else ""
            if outcome:
                message = f"{message} {outcome}"
            await self._mark_unschedulable(pod, message)
            return RETRY_UNSCHEDULABLE
        self.unschedulable.discard(key)
        node = select_node(pod, usage, feasible)
        for claim in self.volume_binding.claims_to_select(pod, node.name):
            await self._select_node(claim, node.name)  # PreBind: the PV controller binds there
        self._place(key, node.name, usage)
        self.assumed.add(key)
        await self._bind_slots.acquire()
        task = asyncio.get_running_loop().create_task(self._bind(pod, node.name))
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)
        return None

    # --- preemption and nominated pods --------------------------------------------------------------------

    def _with_nominated(self, info: NodeInfo, key: str, pod: dict) -> NodeInfo:
        """The node as a pod of this priority sees it: the room nominated pods of no lower priority wait for
        is taken (kube-scheduler's addNominatedPods)."""
        mine = preemption.priority_of(pod)
        waiting = [usage for other, (node, usage, priority) in self.nominated.items()
                   if node == info.name and other != key and priority >= mine]
        if not waiting:
            return info
        view = preemption.clone(info)
        for usage in waiting:
            view.add(usage)
        return view

    def _pods_on(self, node_name: str) -> list[dict]:
        return [pod for k, (node, _) in self.placed.items() if node == node_name
                for pod in [self.pods.get(k)] if pod is not None]

    async def _preempt(self, pod: dict, usage: PodUsage, nodes: list[NodeInfo], reasons: dict) -> str:
        """Evict for pod where that helps and nominate the node (""); else the PostFilter message."""
        spec = spec_of(pod)
        if spec.get("preemptionPolicy") == "Never":
            return f"preemption: {preemption.NEVER}"
        mine = preemption.priority_of(pod)
        nominated = status_of(pod).get("nominatedNodeName")
        if nominated and any(p["metadata"].get("deletionTimestamp") and preemption.priority_of(p) < mine
                             for p in self._pods_on(nominated)):
            return ""  # its victims are still going away: wait for them rather than evict more
        budgets = preemption.Budgets(self.budgets.list() if self.budgets is not None else [])
        candidates, counts = [], {}
        for order, info in enumerate(nodes):
            if not preemption.resolvable(reasons.get(info.name) or []):
                counts[preemption.NOT_HELPFUL] = counts.get(preemption.NOT_HELPFUL, 0) + 1
                continue
            placed = [p for p in self._pods_on(info.name) if not p["metadata"].get("deletionTimestamp")]
            found = preemption.select_victims(pod, usage, info, placed, budgets)
            if isinstance(found, list):
                for reason in found:
                    counts[reason] = counts.get(reason, 0) + 1
                continue
            candidates.append(preemption.Candidate(info.name, found[0], found[1], order))
        best = preemption.pick(candidates)
        if best is None:
            return preemption.postfilter_message(len(nodes), counts)
        for victim in best.victims:
            await self._evict(victim, pod, best.node)
        await self._nominate(pod, best.node)
        return ""

    async def _evict(self, victim: dict, preemptor: dict, node_name: str) -> None:
        meta = victim["metadata"]
        scheduler = spec_of(preemptor).get("schedulerName") or DEFAULT_SCHEDULER_NAME
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{scheduler}: preempting to accommodate a higher priority pod",
                     "lastTransitionTime": now_rfc3339()}
        try:
            await self.client.patch(POD, meta["namespace"], meta["name"], {"status": {"conditions": [condition]}},
                                    "strategic", "status")
            await self.client.delete(POD, meta["namespace"], meta["name"], uid=meta.get("uid"))
        except APIStatusError as e:
            if e.not_found or e.code == 409:
                return  # gone already (or a new pod of that name): nothing to evict
            raise
        self.event(victim, "Normal", "Preempted",
                   f"Preempted by pod {preemptor['metadata'].get('uid')} on node {node_name}")

    async def _nominate(self, pod: dict, node_name: str) -> None:
        meta = pod["metadata"]
        self.nominated[key_of(pod)] = (node_name, PodUsage.of(pod), preemption.priority_of(pod))
        if status_of(pod).get("nominatedNodeName") == node_name:
            return
        try:
            updated = await self.client.patch(POD, meta["namespace"], meta["name"],
                                              {"status": {"nominatedNodeName": node_name}}, "merge", "status")
        except APIStatusError as e:
            if e.not_found:
                return
            raise
        self.pods.remember_write(dict(updated, apiVersion="v1", kind="Pod"))

    async def _select_node(self, claim: dict, node_name: str) -> None:
        meta = claim["metadata"]
        try:
            updated = await self.client.patch(PVC, meta["namespace"], meta["name"],
                                              {"metadata": {"annotations": {SELECTED_NODE: node_name}}})
        except APIStatusError as e:
            if e.not_found:
                return
            raise
        self.claims.remember_write(dict(updated, apiVersion="v1", kind="PersistentVolumeClaim"))

    async def _bind(self, pod: dict, node_name: str) -> None:
        meta = pod["metadata"]
        key = key_of(pod)
        try:
            await self.client.bind(meta["namespace"], meta["name"], node_name)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure: forget the assumption, decide again later
            self._forget(key)
            if isinstance(e, APIStatusError) and (e.not_found or e.code == 409):
                return  # gone, or bound by somebody else: the informer will tell
            self.log.info("binding %s to %s failed: %s", key, node_name, e)
            self.event(pod, "Warning", "FailedScheduling", f"Binding rejected: {e}")
            self.queue.add_rate_limited(key)
        else:
            self.bound += 1
            self.event(pod, "Normal", "Scheduled",
                       f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}")
        finally:
            self._bind_slots.release()

    def _forget(self, key: str) -> None:
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    async def _mark_unschedulable(self, pod: dict, message: str) -> None:
        for cond in status_of(pod).get("conditions") or []:
            if (cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and cond.get("reason") == "Unschedulable" and cond.get("message") == message):
                return  # already says so
        meta = pod["metadata"]
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        try:
            updated = await self.client.patch(POD, meta["namespace"], meta["name"],
                                              {"status": {"conditions": [condition]}}, "strategic", "status")
        except APIStatusError as e:
            if e.not_found:
                return
            raise
        self.pods.remember_write(dict(updated, apiVersion="v1", kind="Pod"))
        self.event(pod, "Warning", "FailedScheduling", message)

    async def close(self) -> None:
        """Wait for the binds in flight (they are short) so none is cut off half-way."""
        if self._binds:
            await asyncio.wait(set(self._binds), timeout=10)
