"""pods/eviction (policy/v1 Eviction): delete a pod unless that breaks its PodDisruptionBudget.

As kube-apiserver's EvictionREST (pkg/registry/core/pod/storage/eviction.go):
- a pod that is Pending, Succeeded, Failed or already terminating is deleted without asking any budget;
- no budget selects the pod: deleted; more than one: 500, which kube does not support either;
- one budget: it must have seen its latest spec (else 429, "still being processed") and allow a disruption
  (else 429 with a DisruptionBudget cause naming the healthy counts); the allowance is taken by decrementing
  status.disruptionsAllowed and recording the pod in status.disruptedPods (the disruption controller stops
  counting it as healthy and drops the entry once the pod is gone or the entry is old), then the pod is
  deleted with the Eviction's deleteOptions;
- a pod that is not Ready does not count toward the budget: it is deleted without taking an allowance while
  the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget, the default) or at once (AlwaysAllow),
  with its resourceVersion as precondition so that it cannot turn Ready in between unnoticed.
"""

from __future__ import annotations

import copy

from aiohttp import web

from kfab.api import strategy
from kfab.api.context import RequestOptions
from kfab.api.deletion import DeleteHandlers, DeleteOptions, delete_options_of
from kfab.api.routing import ResourcePath
from kfab.api.serialize import content_type, dump, negotiate, parse_object, read_body, status_success
from kfab.objects.disruption import DISRUPTION_BUDGET_CAUSE, guards, is_pod_ready, update_disruption_allowed
from kfab.objects.errors import APIError, Cause, bad_request
from kfab.objects.registry import REGISTRY
from kfab.objects.meta import meta_of, spec_of, status_of

PDB = REGISTRY.by_kind("policy/v1", "PodDisruptionBudget")
TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."
EVICTION_RETRIES = 20       # kube's EvictionsRetry steps for a pod that changes while it is evicted
MAX_DISRUPTED_PODS = 2000   # kube's MaxDisruptedPodSize: the controller has not caught up with this many


def _too_many_requests(cause: str, retry_after: int) -> APIError:
    # retryAfterSeconds 0 is Go's omitted zero: no details field, no Retry-After header
    return APIError(429, "TooManyRequests", TOO_MANY_REQUESTS, causes=[Cause("", cause, DISRUPTION_BUDGET_CAUSE)],
                    retry_after_seconds=retry_after or None)


def still_processing(pdb_name: str) -> APIError:
    return _too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.", 10)


def _forbidden(pdb_name: str, why: str) -> APIError:
    return APIError(403, "Forbidden", f'poddisruptionbudget.policy "{pdb_name}" is forbidden: {why}',
                    name=pdb_name, group="policy", kind="poddisruptionbudget")


def take_disruption(pdb: dict, pod_name: str, now: str, dry_run: bool) -> dict:
    """checkAndDecrement: the budget's new status with one disruption taken for `pod_name`, or the 429/403."""
    name, status = pdb["metadata"]["name"], copy.deepcopy(status_of(pdb))
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        raise still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise _forbidden(name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise _too_many_requests(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                                 f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently", 0)
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        update_disruption_allowed(status)
    if not dry_run:
        status["disruptedPods"] = dict(status.get("disruptedPods") or {}, **{pod_name: now})
    return status


def _ignores_budgets(pod: dict) -> bool:
    """canIgnorePDB: the pod disrupts nothing more by going (not running, or on its way out already)."""
    return (status_of(pod).get("phase") in ("Pending", "Succeeded", "Failed")
            or bool(pod["metadata"].get("deletionTimestamp")))


def _with_resource_version(opts: DeleteOptions, pod: dict) -> DeleteOptions:
    if opts.resource_version is not None:
        return opts   # the caller's own precondition is honoured as it is
    return DeleteOptions(opts.grace_period, opts.propagation, opts.uid, pod["metadata"]["resourceVersion"],
                         opts.dry_run, opts.orphan_dependents)


class EvictionHandler(DeleteHandlers):
    async def evict(self, request: web.Request, rp: ResourcePath) -> web.Response:
        eviction = parse_object(await read_body(request, self.body_limit), content_type(request))
        if not isinstance(eviction, dict) or eviction.get("kind", "Eviction") != "Eviction":
            raise bad_request(f"not a Eviction object: {type(eviction).__name__}")
        if meta_of(eviction).get("name") != rp.name:
            raise bad_request("name in URL does not match name in Eviction object")
        opts = delete_options_of(eviction.get("deleteOptions") or {}, request.query)
        target = ResourcePath(rp.rt, rp.namespace, rp.name)
        for attempt in range(EVICTION_RETRIES):
            pod = await self.storage.get(rp.rt, rp.namespace, rp.name)
            if not _ignores_budgets(pod):
                break
            # A Pending pod is deleted only as it was read: it must not start and turn Ready in between.
            pending = not pod["metadata"].get("deletionTimestamp") and status_of(pod).get("phase") == "Pending"
            try:
                await self.delete_object(request, target, rp.name, _with_resource_version(opts, pod) if pending
                                         else opts)
            except APIError as e:
                if e.code != 409 or opts.resource_version is not None or attempt == EVICTION_RETRIES - 1:
                    raise
                continue   # it changed meanwhile: look again, as kube retries conflicts here
            return self._evicted(request, rp)

        budgets, _ = await self.storage.list(PDB, rp.namespace)
        budgets = [b for b in budgets if guards(b, pod)]
        if len(budgets) > 1:
            return dump({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                                    "subresource does not support.", "code": 500}, negotiate(request), 500)
        if budgets:
            pdb = budgets[0]
            status, spec = status_of(pdb), spec_of(pdb)
            desired = int(status.get("desiredHealthy") or 0)
            if not is_pod_ready(pod) and (spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or (
                    int(status.get("currentHealthy") or 0) >= desired > 0)):
                return await self._delete_unready(request, target, pod, opts, pdb["metadata"]["name"])
            await self._take_disruption(request, pdb, rp.name, opts.dry_run)
        await self.delete_object(request, target, rp.name, opts)
        return self._evicted(request, rp)

    async def _take_disruption(self, request: web.Request, pdb: dict, pod_name: str, dry_run: bool) -> None:
        budget = ResourcePath(PDB, pdb["metadata"]["namespace"], pdb["metadata"]["name"])
        now = strategy.now()

        def decrement(current: dict) -> dict:
            return dict(current, status=take_disruption(current, pod_name, now, dry_run))

        await self.update_object(request, budget, RequestOptions(dry_run=dry_run), decrement, None, "status",
                                 track_fields=False)

    async def _delete_unready(self, request, target: ResourcePath, pod: dict, opts: DeleteOptions,
                              pdb_name: str) -> web.Response:
        try:
            await self.delete_object(request, target, target.name, _with_resource_version(opts, pod))
        except APIError as e:
            if e.code == 409 and opts.resource_version is None:
                raise still_processing(pdb_name) from None   # it changed (maybe Ready now): ask again
            raise
        return self._evicted(request, target)

    @staticmethod
    def _evicted(request: web.Request, rp: ResourcePath) -> web.Response:
        return dump(status_success(rp.rt, code=None), negotiate(request), 201)
