"""Node lifecycle controller: notice nodes that stopped heartbeating and move their pods elsewhere.

A node heartbeats by renewing its Lease in kube-node-lease (and by posting status). When neither changed for
`node-monitor-grace-period` seconds - measured on this process's clock since it last saw one change, never by
comparing clocks across hosts - its conditions become Unknown (reason NodeStatusUnknown), it gets the taints
node.kubernetes.io/unreachable NoSchedule and NoExecute, and its pods are marked not Ready (so Services stop
routing to them). A node that reports Ready=False gets the node.kubernetes.io/not-ready taints instead.

Pods on a node with a NoExecute taint are evicted (deleted) as upstream's taint manager does: at once when they do
not tolerate it, after their toleration's tolerationSeconds when they do (counted from the taint's timeAdded),
never when the toleration has no tolerationSeconds. Every pod gets such tolerations when it is created
(DefaultTolerationSeconds: --default-unreachable-toleration-seconds / --default-not-ready-toleration-seconds of
the API server), so the grace period plus that toleration is how long a dead node's pods stay down. The taints go
once the node reports Ready again; pods whose toleration has not run out by then stay where they are. When every
node is down at once nothing is evicted (upstream's full-disruption mode).
"""

from __future__ import annotations

import time

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, now_rfc3339, parse_time
from kfab.objects.taints import NOT_READY_TAINT, UNREACHABLE_TAINT, tolerates
from kfab.objects.meta import spec_of, status_of

NODE = rt_of("Node")
POD = rt_of("Pod")
LEASE = rt_of("Lease", "coordination.k8s.io/v1")
LEASE_NAMESPACE = "kube-node-lease"
GRACE_PERIOD = 20.0      # --node-monitor-grace-period (upstream: 50 s; kfab up sets its own, role control-plane)
LEASE_RECHECK = 1.0      # how soon to look again at a node alive by its Lease whose status still says Unknown
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def by_node_name(pod: dict) -> list[str]:
    node = spec_of(pod).get("nodeName")
    return [node] if node else []


def ready_status(node: dict) -> str | None:
    for cond in status_of(node).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status")
    return None


def wanted_taint_key(node: dict, lost: bool) -> str | None:
    """Which NoExecute taint the node should carry: unreachable (lost/Unknown), not-ready (False) or none."""
    status = "Unknown" if lost else ready_status(node)
    if status == "True":
        return None
    return UNREACHABLE_TAINT if status in (None, "Unknown") else NOT_READY_TAINT


def eviction_delay(pod: dict, taint: dict) -> float | None:
    """Seconds after the taint was added that the pod is evicted (upstream's getMinTolerationTime): 0 when no
    toleration matches, the least tolerationSeconds of those that do, None when they all tolerate it forever."""
    matching = [tol for tol in spec_of(pod).get("tolerations") or [] if tolerates(tol, taint)]
    if not matching:
        return 0.0
    seconds = [float(tol["tolerationSeconds"]) for tol in matching if tol.get("tolerationSeconds") is not None]
    return max(0.0, min(seconds)) if seconds else None


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"
    workers = 4

    def setup(self) -> None:
        self.grace = float(self.ctx.options.get("node-monitor-grace-period", GRACE_PERIOD))
        self.nodes = self.ctx.informer(NODE)
        self.leases = self.ctx.informer(LEASE)
        self.pods = self.ctx.informer(POD)
        self.pods.add_index("node-name", by_node_name)
        self._heartbeats: dict[str, tuple[tuple, float]] = {}   # node -> (last heartbeat seen, monotonic when)
        self.nodes.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new),
                                lambda node: self._heartbeats.pop(node["metadata"]["name"], None))
        on_lease = self._lease_changed
        self.leases.add_handlers(on_lease, lambda old, new: on_lease(new), None)

    def _lease_changed(self, lease: dict) -> None:
        if lease["metadata"].get("namespace") == LEASE_NAMESPACE:
            self.enqueue(lease["metadata"]["name"])

    def _last_heartbeat_age(self, node: dict) -> float:
        """Seconds since this process saw the node's lease renewal time or Ready heartbeat change."""
        name = node["metadata"]["name"]
        lease = self.leases.get_by(LEASE_NAMESPACE, name)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        ready_beat = next((c.get("lastHeartbeatTime") for c in status_of(node).get("conditions") or []
                           if c.get("type") == "Ready"), None)
        mark = (renew, ready_beat)
        now = time.monotonic()
        seen = self._heartbeats.get(name)
        if seen is None or seen[0] != mark:
            self._heartbeats[name] = (mark, now)
            return 0.0
        return now - seen[1]

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        age = self._last_heartbeat_age(node)
        lost = age >= self.grace
        if lost and ready_status(node) != "Unknown":
            node = await self._mark_unknown(node)
            await self._mark_pods_not_ready(node)
        taint_key = wanted_taint_key(node, lost)
        node = await self._set_taints(node, taint_key)
        recheck = None if lost else self.grace - age + 0.05
        if taint_key is None:
            return recheck
        if not lost and taint_key == UNREACHABLE_TAINT:
            # Its Lease is being renewed again but its agent has not posted Ready yet (it is restarting, or just
            # came back): the node is alive, so its pods stay; the taint goes with the agent's next status.
            return min(recheck, LEASE_RECHECK)
        if self._all_nodes_down():
            # As upstream's full-disruption mode: every node down at once is far likelier the control plane's own
            # outage (or this process's) than every worker dying; evicting would only empty the cluster.
            return recheck if recheck is not None else self.grace
        evict_in = await self._evict(node, taint_key)
        waits = [w for w in (recheck, evict_in) if w is not None]
        return min(waits) if waits else None

    def _all_nodes_down(self) -> bool:
        return all(ready_status(node) != "True" for node in self.nodes.list())

    async def _mark_unknown(self, node: dict) -> dict:
        now = now_rfc3339()
        conditions = []
        for cond in status_of(node).get("conditions") or []:
            if cond.get("type") in NODE_CONDITIONS and cond.get("status") != "Unknown":
                cond = dict(cond, status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.", lastTransitionTime=now)
            conditions.append(cond)
        if not any(c.get("type") == "Ready" for c in conditions):
            conditions.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.", "lastHeartbeatTime": None,
                               "lastTransitionTime": now})
        updated = await self.client.update_status(NODE, dict(node, status=dict(node.get("status") or {},
                                                                                conditions=conditions)))
        updated = dict(updated, apiVersion="v1", kind="Node")
        self.nodes.remember_write(updated)
        self.event(updated, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady")
        return updated

    async def _mark_pods_not_ready(self, node: dict) -> None:
        """As kube's MarkPodsNotReady: traffic stops before the pods are evicted."""
        now = now_rfc3339()
        for pod in self.pods.by_index("node-name", node["metadata"]["name"]):
            conds = status_of(pod).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue
            patch = {"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]}}
            try:
                await self.client.patch(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], patch,
                                        "strategic", "status")
            except APIStatusError as e:
                if not e.not_found:
                    raise

    async def _set_taints(self, node: dict, taint_key: str | None) -> dict:
        """Exactly the lifecycle taints `taint_key` calls for (NoSchedule + NoExecute), others untouched."""
        taints = list(spec_of(node).get("taints") or [])
        ours = [t for t in taints if t.get("key") in (NOT_READY_TAINT, UNREACHABLE_TAINT)]
        keep = [t for t in ours if t.get("key") == taint_key]
        wanted = list(taints)
        if len(keep) < 2 or len(ours) != len(keep):
            wanted = [t for t in taints if t.get("key") not in (NOT_READY_TAINT, UNREACHABLE_TAINT)] + keep
            if taint_key is not None:
                for effect in ("NoSchedule", "NoExecute"):
                    if not any(t.get("effect") == effect for t in keep):
                        wanted.append({"key": taint_key, "effect": effect, "timeAdded": now_rfc3339()})
        if wanted == taints:
            return node
        meta = node["metadata"]
        updated = await self.client.patch(NODE, None, meta["name"], {
            "metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {"taints": wanted or None}})
        updated = dict(updated, apiVersion="v1", kind="Node")
        self.nodes.remember_write(updated)
        return updated

    async def _evict(self, node: dict, taint_key: str) -> float | None:
        """Delete the pods whose delay has passed; seconds until the next one is due."""
        taint = next((t for t in spec_of(node).get("taints") or []
                      if t.get("key") == taint_key and t.get("effect") == "NoExecute"), None)
        if taint is None:
            return None
        added = parse_time(taint.get("timeAdded"))
        since = (time.time() - added.timestamp()) if added else 0.0
        next_due = None
        for pod in self.pods.by_index("node-name", node["metadata"]["name"]):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            delay = eviction_delay(pod, taint)
            if delay is None:
                continue
            if since < delay:
                due = delay - since + 0.05
                next_due = due if next_due is None else min(next_due, due)
                continue
            try:
                await self.client.delete(POD, meta["namespace"], meta["name"], uid=meta.get("uid"))
            except APIStatusError as e:
                if not (e.not_found or e.code == 409):
                    raise
                continue
            self.event(pod, "Normal", "TaintManagerEviction",
                       f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
        return next_due
