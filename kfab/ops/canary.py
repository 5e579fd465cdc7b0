"""A canary pod: proof that a node's agent can start and stop a pod, not only that its Node reports Ready.

`kfab upgrade` runs one on each worker it upgraded before it moves on. Ready only says the agent posts
heartbeats; an agent whose Podman is wedged stays Ready while no pod can start or go (issue: a drained worker
that took no replacement pods). The canary is pinned to the node (spec.nodeName, tolerating every taint, so
cordoning does not matter), runs an image that ran there before (no pull needed), and counts as started once
a container has started; it is then deleted, and it is gone only when the agent has removed it from Podman
and finalized the deletion.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from kfab.client import APIStatusError, Client, rt_of
from kfab.ops.drain import DrainError, wait_gone
from kfab.objects.meta import spec_of, status_of

POD = rt_of("Pod")
SERVICE = rt_of("Service")
ENDPOINT_SLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
NAMESPACE = "kube-system"
LABEL = "kfab.io/canary"


class CanaryError(Exception):
    """The node's agent did not start or stop the canary; the message says which and what the pod showed."""


def canary_pod(node: str, image: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"kfab-canary-{node}-{uuid.uuid4().hex[:5]}"[:63], "namespace": NAMESPACE,
                     "labels": {LABEL: node}},
        "spec": {"nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "canary", "image": image, "imagePullPolicy": "IfNotPresent"}]},
    }


def started(pod: dict) -> bool:
    """A container has started (still running, or ran and ended: an image whose command exits at once)."""
    for status in status_of(pod).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or (state.get("terminated") or {}).get("startedAt"):
            return True
    return False


def describe(pod: dict | None) -> str:
    if pod is None:
        return "no pod"
    status = status_of(pod)
    waiting = [f"{c.get('name')}: {((c.get('state') or {}).get('waiting') or {}).get('reason', '?')}"
               for c in status.get("containerStatuses") or [] if "waiting" in (c.get("state") or {})]
    return f"phase {status.get('phase', 'Pending')}" + (f", waiting ({'; '.join(waiting)})" if waiting else "")


async def _get(client: Client, name: str) -> dict | None:
    try:
        return await client.get(POD, NAMESPACE, name)
    except APIStatusError as exc:
        if exc.not_found:
            return None
        raise


async def run_canary(client: Client, node: str, image: str, timeout: float) -> float:
    """Start and stop a canary pod on `node`; returns the seconds it took. Raises CanaryError."""
    begun = time.monotonic()
    pod = await client.create(POD, canary_pod(node, image), NAMESPACE)
    name = pod["metadata"]["name"]
    deadline = begun + timeout
    try:
        while not started(pod):
            if time.monotonic() > deadline:
                raise CanaryError(f"canary pod {NAMESPACE}/{name} ({image}) did not start on node {node} within "
                                  f"{timeout:g}s: {describe(pod)}")
            await asyncio.sleep(0.5)
            pod = await _get(client, name) or pod
    finally:
        try:
            await client.delete(POD, NAMESPACE, name, grace_period_seconds=1)
        except APIStatusError as exc:
            if not exc.not_found:
                raise
    try:
        await wait_gone(client, pod, time.monotonic() + timeout)
    except DrainError:
        raise CanaryError(f"canary pod {NAMESPACE}/{name} was not stopped and removed by node {node}'s agent "
                          f"within {timeout:g}s: {describe(await _get(client, name))}") from None
    return time.monotonic() - begun


def image_for(pods: list[dict]) -> str | None:
    """An image the node ran before: the first container image of the pods drained from it."""
    for pod in pods:
        for container in spec_of(pod).get("containers") or []:
            if container.get("image"):
                return container["image"]
    return None


async def controllers_answer(client: Client, timeout: float) -> float:
    """Proof that the controller-manager works after a control-plane restart: a new Service gets its
    EndpointSlice from the endpointslice controller (it starts only once its informers are synced). Until
    then nobody takes a drained pod out of the Services' endpoints, and the proxies send traffic to a pod
    that is going. Returns the seconds it took; raises CanaryError."""
    begun = time.monotonic()
    name = f"kfab-upgrade-check-{uuid.uuid4().hex[:6]}"
    await client.create(SERVICE, {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": name, "namespace": NAMESPACE,
                                               "labels": {LABEL: "control-plane"}},
                                  "spec": {"selector": {LABEL: name}, "ports": [{"port": 9, "protocol": "TCP"}]}},
                        NAMESPACE)
    try:
        while not (await client.list(ENDPOINT_SLICE, NAMESPACE,
                                     label_selector=f"kubernetes.io/service-name={name}"))["items"]:
            if time.monotonic() - begun > timeout:
                raise CanaryError(f"the controller-manager made no EndpointSlice for Service {NAMESPACE}/{name} "
                                  f"within {timeout:g}s of the control plane's upgrade")
            await asyncio.sleep(0.5)
    finally:
        await client.delete(SERVICE, NAMESPACE, name)
    return time.monotonic() - begun
