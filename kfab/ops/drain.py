"""Cordon, drain and wait for Nodes through the API, as `kubectl drain` does it.

Pods are evicted (pods/eviction), so PodDisruptionBudgets are honoured: an eviction a budget refuses (429) is
retried every 5 seconds until the timeout, as kubectl drain does, saying which budget holds it. A pod no budget
guards gets kfab's own caution instead: a controller's pods go one at a time, each only once its workload is
fully available again (as a budget with maxUnavailable 1 would), so a Deployment with two or more replicas
keeps serving while its pods move off the node. Against an API without pods/eviction, and with grace period
0 (the node's agent is gone), pods are deleted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.disruption import guards
from kfab.objects.meta import spec_of, status_of

NODE, POD, PDB = rt_of("Node"), rt_of("Pod"), rt_of("PodDisruptionBudget", "policy/v1")
OWNER_KINDS = {"ReplicaSet": rt_of("ReplicaSet", "apps/v1"), "StatefulSet": rt_of("StatefulSet", "apps/v1")}
MIRROR = "kubernetes.io/config.mirror"
EVICTION_RETRY = 5.0   # seconds, as kubectl drain waits after a 429


class DrainError(Exception):
    pass


def is_ready(node: dict) -> bool:
    conditions = status_of(node).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_of(pod: dict) -> dict | None:
    return next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)


def pod_key(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


@dataclass
class DrainPlan:
    delete: list[dict]       # pods to remove, in order
    skipped: list[str]       # pods left alone, with why
    refused: list[str]       # pods that stop the drain unless forced, with why


def plan_drain(pods: list[dict], force: bool = False, delete_emptydir_data: bool = False) -> DrainPlan:
    """kubectl drain's filters: DaemonSet and mirror pods stay; unmanaged pods need --force, pods with
    emptyDir data need --delete-emptydir-data (their data is lost)."""
    plan = DrainPlan([], [], [])
    for pod in pods:
        meta, key = pod["metadata"], pod_key(pod)
        owner = controller_of(pod)
        if MIRROR in (meta.get("annotations") or {}):
            plan.skipped.append(f"{key} (mirror pod)")
            continue
        if owner and owner.get("kind") == "DaemonSet":
            plan.skipped.append(f"{key} (DaemonSet-managed)")
            continue
        finished = status_of(pod).get("phase") in ("Succeeded", "Failed")
        if owner is None and not force and not finished:
            plan.refused.append(f"{key} is not managed by a controller (--force deletes it for good)")
            continue
        volumes = spec_of(pod).get("volumes") or []
        if any("emptyDir" in v for v in volumes) and not delete_emptydir_data and not finished:
            plan.refused.append(f"{key} has emptyDir data (--delete-emptydir-data loses it)")
            continue
        plan.delete.append(pod)
    return plan


async def get_node(client: Client, name: str) -> dict | None:
    try:
        return await client.get(NODE, None, name)
    except APIStatusError as exc:
        if exc.not_found:
            return None
        raise


async def node_names(client: Client) -> list[str]:
    return sorted(n["metadata"]["name"] for n in (await client.list(NODE))["items"])


async def set_unschedulable(client: Client, name: str, value: bool) -> None:
    await client.patch(NODE, None, name, {"spec": {"unschedulable": value or None}})


async def pods_on(client: Client, node: str) -> list[dict]:
    pods = (await client.list(POD, field_selector=f"spec.nodeName={node}"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")] + \
           [p for p in pods if p["metadata"].get("deletionTimestamp")]


async def _supports_eviction(client: Client) -> bool:
    resources = (await client.request("GET", "/api/v1")).get("resources") or []
    return any(r.get("name") == "pods/eviction" for r in resources)


async def _workload_available(client: Client, pod: dict) -> bool:
    owner = controller_of(pod)
    rt = OWNER_KINDS.get((owner or {}).get("kind"))
    if rt is None:
        return True
    try:
        obj = await client.get(rt, pod["metadata"]["namespace"], owner["name"])
    except APIStatusError as exc:
        if exc.not_found:
            return True
        raise
    wanted = spec_of(obj).get("replicas", 1)
    status = status_of(obj)
    return status.get("availableReplicas", status.get("readyReplicas", 0)) >= wanted


async def _budget_guarded(client: Client, pod: dict) -> bool:
    budgets = (await client.list(PDB, pod["metadata"]["namespace"]))["items"]
    return any(guards(b, pod) for b in budgets)


def _refusal(exc: APIStatusError) -> str:
    """kubectl drain's retry line: the 429's message and the budget's own words (its cause)."""
    causes = [c.get("message") for c in ((exc.status or {}).get("details") or {}).get("causes") or []
              if c.get("message")]
    return " ".join([exc.message] + causes)


async def _remove(client: Client, pod: dict, evict: bool, deadline: float, grace_period: int | None,
                  log=print) -> None:
    meta = pod["metadata"]
    if meta.get("deletionTimestamp") and grace_period is None:
        return
    while True:
        try:
            if evict:
                await client.request("POST", client.path(POD, meta["namespace"], meta["name"], "eviction"),
                                     body={"apiVersion": "policy/v1", "kind": "Eviction",
                                           "metadata": {"name": meta["name"], "namespace": meta["namespace"]}})
            else:
                await client.delete(POD, meta["namespace"], meta["name"], uid=meta.get("uid"),
                                    grace_period_seconds=grace_period)
            return
        except APIStatusError as exc:
            if exc.not_found or (exc.code == 409 and not evict):
                return   # gone already, or a new pod of the same name (the old one is gone)
            if exc.code != 429 or time.monotonic() + EVICTION_RETRY > deadline:
                raise
            log(f"  error when evicting pods/\"{meta['name']}\" -n \"{meta['namespace']}\" (will retry after "
                f"{EVICTION_RETRY:g}s): {_refusal(exc)}")
            await asyncio.sleep(EVICTION_RETRY)   # a disruption budget says not yet


async def wait_gone(client: Client, pod: dict, deadline: float) -> None:
    """Until this pod (this uid) is gone from the API; DrainError at the deadline."""
    meta = pod["metadata"]
    while time.monotonic() < deadline:
        try:
            current = await client.get(POD, meta["namespace"], meta["name"])
        except APIStatusError as exc:
            if exc.not_found:
                return
            raise
        if current["metadata"].get("uid") != meta.get("uid"):
            return
        await asyncio.sleep(0.3)
    raise DrainError(f"pod {pod_key(pod)} is still terminating")


async def drain(client: Client, node: str, *, timeout: float = 300, force: bool = False,
                delete_emptydir_data: bool = False, grace_period: int | None = None, log=print) -> list[str]:
    """Cordon `node` and remove its pods; returns the pods removed. Refuses (before cordoning) when a pod
    needs --force / --delete-emptydir-data. grace_period 0: the node's agent is gone, nobody would finish a
    graceful deletion (the pods are deleted at once, as `kubectl delete --force --grace-period=0`)."""
    deadline = time.monotonic() + timeout
    plan = plan_drain(await pods_on(client, node), force, delete_emptydir_data)
    if plan.refused:
        raise DrainError("cannot drain node " + node + ": " + "; ".join(plan.refused))
    await set_unschedulable(client, node, True)
    log(f"node/{node} cordoned")
    for skipped in plan.skipped:
        log(f"  leaving {skipped}")
    evict = grace_period is None and await _supports_eviction(client)
    removed = []
    for pod in plan.delete:
        if grace_period is None and not (evict and await _budget_guarded(client, pod)):
            while not await _workload_available(client, pod):
                if time.monotonic() > deadline:
                    raise DrainError(f"draining node {node}: the workload of pod {pod_key(pod)} "
                                     f"({controller_of(pod)['kind']} {controller_of(pod)['name']}) did not become "
                                     f"fully available within {timeout:g}s; node left cordoned")
                await asyncio.sleep(0.5)
        log(f"  {'evicting' if evict else 'deleting'} pod {pod_key(pod)}")
        try:
            await _remove(client, pod, evict, deadline, grace_period, log)
        except APIStatusError as exc:
            if exc.code != 429:
                raise
            raise DrainError(f"draining node {node}: pod {pod_key(pod)} could not be evicted within {timeout:g}s: "
                             f"{_refusal(exc)}; node left cordoned") from None
        try:
            await wait_gone(client, pod, deadline)
        except DrainError as exc:
            raise DrainError(f"draining node {node}: {exc} after {timeout:g}s; node left cordoned") from None
        removed.append(pod_key(pod))
    log(f"node/{node} drained ({len(removed)} pods removed)")
    return removed


async def wait_ready(client: Client, node: str, timeout: float) -> dict:
    """Until the Node exists and is Ready; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        obj = await get_node(client, node)
        if obj is not None and is_ready(obj):
            return obj
        if time.monotonic() > deadline:
            state = "not registered" if obj is None else "registered but not Ready"
            raise DrainError(f"node {node} is {state} after {timeout:g}s")
        await asyncio.sleep(0.3)
