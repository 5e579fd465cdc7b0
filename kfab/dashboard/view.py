"""The cluster as the dashboard shows it: informers (list + watch, server side, with the cluster's credentials)
on nodes, pods, workloads, services, endpoints and events, each object cut down to what a tile or a row shows,
and every change pushed to the subscribed browsers. Node usage comes from metrics.k8s.io when it is served
(it has no watch: read every METRICS_INTERVAL seconds here, never by the browser)."""

from __future__ import annotations

import asyncio
import logging

from kfab.client import APIStatusError, Client, rt_of
from kfab.machinery.informer import InformerFactory, key_of
from kfab.objects.meta import meta_of, spec_of, status_of
from kfab.objects.quantity import int_value, milli_value

log = logging.getLogger(__name__)

METRICS_INTERVAL = 10.0
EVENTS_KEPT = 40
# (kind, apiVersion) of every kind shown, in the order the page lists its sections.
KINDS = (("Node", "v1"), ("Pod", "v1"), ("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"),
         ("DaemonSet", "apps/v1"), ("Service", "v1"), ("Endpoints", "v1"), ("Event", "v1"))


def _condition(obj: dict, kind: str) -> dict:
    return next((c for c in status_of(obj).get("conditions") or [] if c.get("type") == kind), {})


def node_summary(node: dict) -> dict:
    meta, status = meta_of(node), status_of(node)
    ready = _condition(node, "Ready")
    return {"name": meta["name"], "ready": ready.get("status") == "True", "reason": ready.get("reason", ""),
            "unschedulable": bool(spec_of(node).get("unschedulable")),
            "roles": sorted(k.split("/", 1)[1] for k in meta.get("labels") or {}
                            if k.startswith("node-role.kubernetes.io/")),
            "cpu": _millicores((status.get("allocatable") or {}).get("cpu")),
            "memory": _bytes((status.get("allocatable") or {}).get("memory"))}


def pod_summary(pod: dict) -> dict:
    meta, spec, status = meta_of(pod), spec_of(pod), status_of(pod)
    statuses = status.get("containerStatuses") or []
    waiting = next((s["state"]["waiting"].get("reason", "") for s in statuses
                    if (s.get("state") or {}).get("waiting")), "")
    owner = next((f"{r['kind']}/{r['name']}" for r in meta.get("ownerReferences") or [] if r.get("controller")), "")
    phase = status.get("phase") or "Pending"
    return {"namespace": meta.get("namespace", ""), "name": meta["name"], "node": spec.get("nodeName") or "",
            "phase": "Terminating" if meta.get("deletionTimestamp") else phase,
            "ready": sum(bool(s.get("ready")) for s in statuses), "containers": len(spec.get("containers") or []),
            "reason": waiting or status.get("reason") or "", "owner": owner}


def workload_summary(obj: dict) -> dict:
    """Desired, ready and updated counts, and whether the rollout is done (as `kubectl rollout status` says)."""
    meta, spec, status = meta_of(obj), spec_of(obj), status_of(obj)
    kind = obj.get("kind")
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        ready, updated = status.get("numberReady", 0), status.get("updatedNumberScheduled", 0)
        available = status.get("numberAvailable", 0)
    else:
        desired = spec.get("replicas", 1)
        ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
        available = status.get("availableReplicas", ready)
    observed = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    current = status.get("replicas", status.get("currentNumberScheduled", 0))
    done = observed and updated == desired and ready == desired and available >= desired and current == desired
    return {"kind": kind, "namespace": meta.get("namespace", ""), "name": meta["name"], "desired": desired,
            "current": current, "ready": ready, "updated": updated, "available": available,
            "rollout": "complete" if done else "progressing",
            "message": _condition(obj, "Progressing").get("message", "") if not done else ""}


def service_summary(svc: dict) -> dict:
    meta, spec, status = meta_of(svc), spec_of(svc), status_of(svc)
    ingress = [i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []]
    return {"namespace": meta.get("namespace", ""), "name": meta["name"], "type": spec.get("type", "ClusterIP"),
            "clusterIP": spec.get("clusterIP", ""), "external": [i for i in ingress if i],
            "ports": [f"{p.get('port')}/{p.get('protocol', 'TCP')}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
                      for p in spec.get("ports") or []]}


def endpoints_summary(ep: dict) -> dict:
    meta = meta_of(ep)
    ready, not_ready = [], []
    for subset in ep.get("subsets") or []:
        ready += [a.get("ip", "") for a in subset.get("addresses") or []]
        not_ready += [a.get("ip", "") for a in subset.get("notReadyAddresses") or []]
    return {"namespace": meta.get("namespace", ""), "name": meta["name"], "ready": ready, "notReady": not_ready}


def event_summary(event: dict) -> dict:
    meta, involved = meta_of(event), event.get("involvedObject") or {}
    when = (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
            or meta.get("creationTimestamp") or "")
    return {"namespace": meta.get("namespace", ""), "type": event.get("type", "Normal"),
            "reason": event.get("reason", ""), "message": event.get("message", ""), "count": event.get("count", 1),
            "object": f"{involved.get('kind', '')}/{involved.get('name', '')}", "time": when}


SUMMARIES = {"Node": node_summary, "Pod": pod_summary, "Deployment": workload_summary,
             "StatefulSet": workload_summary, "DaemonSet": workload_summary, "Service": service_summary,
             "Endpoints": endpoints_summary, "Event": event_summary}


def _millicores(value) -> int:
    return milli_value(value) if value is not None else 0


def _bytes(value) -> int:
    return int_value(value) if value is not None else 0


class ClusterView:
    """Keeps the summaries current and fans each change out to every subscriber's queue."""

    def __init__(self, client: Client):
        self.client = client
        self.factory = InformerFactory(client)
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind, _ in KINDS}
        self.metrics: dict[str, dict] = {}     # node -> {"cpu": millicores, "memory": bytes}
        self.metrics_served = False
        self.subscribers: set[asyncio.Queue] = set()
        self._metrics_task: asyncio.Task | None = None
        for kind, api_version in KINDS:
            informer = self.factory.informer(rt_of(kind, api_version))
            informer.add_handlers(on_add=lambda obj, k=kind: self._put(k, obj),
                                  on_update=lambda _old, obj, k=kind: self._put(k, obj),
                                  on_delete=lambda obj, k=kind: self._delete(k, obj))

    async def start(self) -> None:
        self.factory.start()
        self._metrics_task = asyncio.create_task(self._read_metrics(), name="dashboard-metrics")
        await self.factory.wait_synced()

    async def stop(self) -> None:
        if self._metrics_task is not None:
            self._metrics_task.cancel()
        await self.factory.stop()

    # ---- what the browser gets -----------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {"op": "snapshot", "objects": {k: list(v.values()) for k, v in self.objects.items()},
                "metrics": self.metrics, "metricsServed": self.metrics_served}

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=10000)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def _publish(self, message: dict) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A browser that stopped reading: its stream ends and EventSource reconnects with a snapshot.
                self.subscribers.discard(queue)

    # ---- informer handlers ---------------------------------------------------------------------------
    def _put(self, kind: str, obj: dict) -> None:
        obj.setdefault("kind", kind)
        key = key_of(obj)
        summary = SUMMARIES[kind](obj)
        if self.objects[kind].get(key) == summary:
            return
        self.objects[kind][key] = summary
        if kind == "Event" and len(self.objects[kind]) > EVENTS_KEPT:
            oldest = sorted(self.objects[kind], key=lambda k: self.objects[kind][k]["time"])
            for old in oldest[:len(oldest) - EVENTS_KEPT]:
                self.objects[kind].pop(old)
        self._publish({"op": "put", "kind": kind, "key": key, "obj": summary})

    def _delete(self, kind: str, obj: dict) -> None:
        key = key_of(obj)
        if self.objects[kind].pop(key, None) is not None:
            self._publish({"op": "delete", "kind": kind, "key": key})

    async def _read_metrics(self) -> None:
        while True:
            try:
                listed = await self.client.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
                metrics = {meta_of(item)["name"]: {"cpu": _millicores(item["usage"].get("cpu")),
                                                   "memory": _bytes(item["usage"].get("memory"))}
                           for item in listed.get("items") or []}
                self.metrics_served = True
            except APIStatusError as exc:
                log.debug("metrics.k8s.io not served: %s", exc)
                metrics, self.metrics_served = {}, False
            except (OSError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                log.info("reading node metrics failed: %s", exc)
                metrics = self.metrics
            if metrics != self.metrics:
                self.metrics = metrics
                self._publish({"op": "metrics", "metrics": metrics, "metricsServed": self.metrics_served})
            await asyncio.sleep(METRICS_INTERVAL)
