"""HorizontalPodAutoscaler controller (autoscaling/v2, Resource metrics), as kube-controller-manager's
horizontal-pod-autoscaler: every sync period (15 s) each HPA reads its target's scale subresource, the pods of
the scale's selector and their PodMetrics (metrics.k8s.io), proposes a replica count per metric (the largest
wins; kfab.controllers.hpa_replicas does the arithmetic), stabilizes and rate-limits it by spec.behavior,
writes the new count through the target's scale subresource, and reports status: current/desired replicas,
currentMetrics, lastScaleTime and the AbleToScale / ScalingActive / ScalingLimited conditions, with kube's
SuccessfulRescale and Failed* events.
"""

from __future__ import annotations

import time

from kfab.client import APIStatusError, rt_of
from kfab.controllers import hpa_replicas as calc
from kfab.controllers.hpa_replicas import MetricError, PodMetric, PodState, Recommendations
from kfab.machinery.controller import Controller, now_rfc3339, parse_time
from kfab.objects import quantity
from kfab.objects.crd import is_established, served_types
from kfab.objects.defaults.autoscaling import SCALE_DOWN, SCALE_UP, scaling_rules
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.objects.selectors import parse_label_selector
from kfab.objects.meta import spec_of, status_of

HPA = rt_of("HorizontalPodAutoscaler", "autoscaling/v2")
POD = rt_of("Pod")
CRD = rt_of("CustomResourceDefinition", "apiextensions.k8s.io/v1")
SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period
EVENTS_KEPT = 1800.0  # the longest policy period a behavior may name


def _epoch(value: str | None) -> float | None:
    when = parse_time(value)
    return when.timestamp() if when else None


def _condition(status: dict, kind: str, value: str, reason: str, message: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    old = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == value else now_rfc3339()
    conditions.append({"type": kind, "status": value, "lastTransitionTime": since, "reason": reason,
                       "message": message})
    order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
    status["conditions"] = sorted(conditions, key=lambda c: order.get(c["type"], 3))


def _millis(value) -> int:
    return quantity.milli_value(value)


def _pod_state(pod: dict, resource: str) -> PodState:
    status = status_of(pod)
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    request, complete = 0, True
    for c in spec_of(pod).get("containers") or []:
        value = ((c.get("resources") or {}).get("requests") or {}).get(resource)
        if value is None:
            complete = False
        else:
            request += _millis(value)
    return PodState(name=pod["metadata"]["name"], phase=status.get("phase") or "Pending",
                    deleting=bool(pod["metadata"].get("deletionTimestamp")), start_time=_epoch(status.get("startTime")),
                    ready=None if ready is None else ready.get("status") == "True",
                    ready_since=_epoch((ready or {}).get("lastTransitionTime")), request=request if complete else None)


def _window_seconds(text: str) -> float:
    try:
        return float(str(text).rstrip("s"))
    except ValueError:
        return 0.0


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"
    workers = 2

    def setup(self) -> None:
        self.sync_period = float(self.ctx.options.get("horizontal-pod-autoscaler-sync-period", SYNC_PERIOD))
        self.hpas = self.ctx.informer(HPA)
        self.pods = self.ctx.informer(POD)
        self.crds = self.ctx.informer(CRD)  # a scale target may be a custom resource with a scale subresource
        self.hpas.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new))
        self.memory: dict[str, Recommendations] = {}

    def _target_rt(self, ref: dict) -> ResourceType | None:
        key = (ref.get("apiVersion", ""), ref.get("kind", ""))
        rt = REGISTRY.by_kind(*key)
        if rt is not None:
            return rt
        for crd in self.crds.list():
            if is_established(crd):
                for served in served_types(crd):
                    if (served.api_version, served.kind) == key:
                        return served
        return None

    async def reconcile(self, key: str) -> float | None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.memory.pop(key, None)
            return None
        if hpa["metadata"].get("deletionTimestamp"):
            return None
        spec = spec_of(hpa)
        status = {k: v for k, v in status_of(hpa).items()}
        status["observedGeneration"] = hpa["metadata"].get("generation")
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ref.get('name')}"
        namespace = hpa["metadata"]["namespace"]
        rt = self._target_rt(ref)
        try:
            if rt is None:
                raise APIStatusError(404, "NotFound", f'no matches for kind "{ref.get("kind")}" in group '
                                     f'"{ref.get("apiVersion", "").rpartition("/")[0]}"')
            scale = await self.client.get(rt, namespace, ref.get("name", ""), "scale")
        except APIStatusError as e:
            _condition(status, "AbleToScale", "False", "FailedGetScale",
                       f"the HPA controller was unable to get the target's current scale: {e.message}")
            self.event(hpa, "Warning", "FailedGetScale", e.message)
            await self.write_status(self.hpas, hpa, status)
            return self.sync_period
        _condition(status, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale")
        current = int(spec_of(scale).get("replicas") or 0)
        status["currentReplicas"] = int(status_of(scale).get("replicas") or 0)
        min_replicas, max_replicas = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
        memory = self.memory.setdefault(key, Recommendations())
        now = time.time()
        rescale_reason = ""
        if current == 0 and min_replicas != 0:
            desired = 0
            _condition(status, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero")
        elif current > max_replicas:
            desired, rescale_reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, rescale_reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            try:
                proposal, metric_name, statuses = await self._replicas_for_metrics(hpa, scale, current, now)
            except MetricError as e:
                _condition(status, "ScalingActive", "False", "FailedGetResourceMetric",
                           f"the HPA was unable to compute the replica count: {e}")
                self.event(hpa, "Warning", "FailedComputeMetricsReplicas", str(e))
                status["desiredReplicas"] = current
                await self.write_status(self.hpas, hpa, status)
                return self.sync_period
            status["currentMetrics"] = statuses
            _condition(status, "ScalingActive", "True", "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from {metric_name}")
            rescale_reason = "All metrics below target" if proposal < current else f"{metric_name} above target"
            behavior = spec.get("behavior")
            if behavior is None:
                stable, limited = memory.legacy(current, proposal, min_replicas, max_replicas, now)
            else:
                stable, limited = memory.with_behavior(
                    current, proposal, min_replicas, max_replicas, scaling_rules(behavior.get("scaleUp"), SCALE_UP),
                    scaling_rules(behavior.get("scaleDown"), SCALE_DOWN), now)
            if stable.replicas != proposal:
                _condition(status, "AbleToScale", "True", stable.reason, stable.message)
            else:
                _condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
            _condition(status, "ScalingLimited", "True" if limited.replicas != stable.replicas else "False",
                       limited.reason, limited.message)
            desired = limited.replicas
        status["desiredReplicas"] = desired
        if desired != current:
            try:
                await self.client.update(rt, dict(scale, spec=dict(scale.get("spec") or {}, replicas=desired)),
                                         subresource="scale")
            except APIStatusError as e:
                _condition(status, "AbleToScale", "False", "FailedUpdateScale",
                           f"the HPA controller was unable to update the target scale: {e.message}")
                self.event(hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {rescale_reason}; "
                                                            f"error: {e.message}")
                await self.write_status(self.hpas, hpa, status)
                return self.sync_period
            memory.record_scale(current, desired, now, EVENTS_KEPT)
            _condition(status, "AbleToScale", "True", "SucceededRescale",
                       f"the HPA controller was able to update the target scale to {desired}")
            self.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            self.log.info("%s: %s scaled %d -> %d (%s)", key, reference, current, desired, rescale_reason)
            status["lastScaleTime"] = now_rfc3339()
        await self.write_status(self.hpas, hpa, status)
        return self.sync_period

    async def _replicas_for_metrics(self, hpa: dict, scale: dict, current: int, now: float):
        """(largest proposal, its metric's name, currentMetrics); MetricError when no metric gives a count."""
        selector_text = status_of(scale).get("selector") or ""
        if not selector_text:
            raise MetricError("the HPA target's scale is missing a selector")
        selector = parse_label_selector(selector_text)
        namespace = hpa["metadata"]["namespace"]
        pods = [p for p in self.pods.list(namespace) if selector.matches(p["metadata"].get("labels"))]
        try:
            listed = await self.client.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                                               params={"labelSelector": selector_text})
        except APIStatusError as e:
            raise MetricError(f"unable to fetch metrics from resource metrics API: {e.message}") from None
        best, best_name, statuses, errors = None, "", [], []
        specs = spec_of(hpa).get("metrics") or []
        for metric in specs:
            if metric.get("type") != "Resource":
                errors.append(f"the HPA controller only computes Resource metrics, not {metric.get('type')}")
                statuses.append({"type": metric.get("type")})
                continue
            resource = metric["resource"]["name"]
            target = metric["resource"].get("target") or {}
            try:
                proposal, name, state = self._one_resource(resource, target, current, pods, listed, now)
            except MetricError as e:
                errors.append(f"failed to get {resource} utilization: {e}")
                statuses.append({"type": "Resource", "resource": {"name": resource, "current": {}}})
                continue
            statuses.append(state)
            if best is None or proposal > best:
                best, best_name = proposal, name
        if best is None or (errors and best < current):
            raise MetricError(f"invalid metrics ({len(errors)} invalid out of {len(specs)}), first error is: "
                              f"{errors[0] if errors else 'no metrics'}")
        return best, best_name, statuses

    def _one_resource(self, resource: str, target: dict, current: int, pods: list[dict], listed: dict,
                      now: float) -> tuple[int, str, dict]:
        metrics: dict[str, PodMetric] = {}
        for item in listed.get("items") or []:
            total = sum(_millis(c["usage"][resource]) for c in item.get("containers") or []
                        if resource in (c.get("usage") or {}))
            metrics[item["metadata"]["name"]] = PodMetric(total, _epoch(item.get("timestamp")) or now,
                                                          _window_seconds(item.get("window", "0s")))
        if not metrics:
            raise MetricError("unable to get metrics for resource " + resource + ": no metrics returned from "
                              "resource metrics API")
        states = [_pod_state(p, resource) for p in pods]
        if target.get("type") == "AverageValue":
            proposal = calc.replicas_for_resource(current, states, metrics, resource, now,
                                                  average_target=_millis(target["averageValue"]))
            average = quantity.format_quantity(quantity.parse_value(f"{proposal.average}m"))
            return (proposal.replicas, f"{resource} resource",
                    {"type": "Resource", "resource": {"name": resource, "current": {"averageValue": average}}})
        proposal = calc.replicas_for_resource(current, states, metrics, resource, now,
                                              utilization_target=int(target.get("averageUtilization") or 0))
        average = quantity.format_quantity(quantity.parse_value(f"{proposal.average}m"))
        return (proposal.replicas, f"{resource} resource utilization (percentage of request)",
                {"type": "Resource", "resource": {"name": resource, "current": {
                    "averageUtilization": proposal.utilization, "averageValue": average}}})
