"""Subresources: status, scale (autoscaling/v1 Scale), pods/binding, pods/log, namespaces/finalize."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from kfab.objects import jsonwire
from kfab.api import strategy
from kfab.api.context import RequestOptions, warning_headers
from kfab.api.patch import apply_patch, media_type
from kfab.objects.errors import APIError, Cause, bad_request, conflict, invalid
from kfab.api.resources import ObjectHandlers
from kfab.api.routing import ResourcePath
from kfab.api.serialize import (content_type, dump, negotiate, parse_object, read_body, render_object,
                                 status_success)
from kfab.objects.registry import ResourceType
from kfab.objects.selectors import selector_from_object

# (pod, query) -> the log text, or an async iterator of chunks (kfab.api.kubelet_proxy.NodeLogProxy streams the
# agent's).
PodLogs = Callable[[dict, "web.MultiDictProxy"], Awaitable[bytes]]
# (pod, request) -> the WebSocket response relaying kubectl exec to the node agent
# (kfab.api.kubelet_proxy.NodeExecProxy).
PodExec = Callable[[dict, web.Request], Awaitable[web.StreamResponse]]


def _at(obj: dict, path: str):
    """The value at a CRD scale path like `.spec.replicas` (None when absent)."""
    node = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _set_at(obj: dict, path: str, value) -> None:
    parts = [p for p in path.split(".") if p]
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def scale_of(obj: dict, rt: ResourceType | None = None) -> dict:
    meta = obj["metadata"]
    scale = rt.custom.scale if rt is not None and rt.custom is not None else None
    if scale is not None:
        # A CRD's scale subresource: replicas and the selector (already a string) where its paths say.
        replicas = _at(obj, scale.spec_replicas) or 0
        status_replicas = _at(obj, scale.status_replicas) or 0
        selector_text = _at(obj, scale.label_selector) if scale.label_selector else ""
    else:
        selector = (obj.get("spec") or {}).get("selector")
        try:
            selector_text = str(selector_from_object(selector)) if selector is not None else ""
        except ValueError:
            selector_text = ""
        replicas = (obj.get("spec") or {}).get("replicas", 0)
        status_replicas = (obj.get("status") or {}).get("replicas", 0)
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": int(replicas)},
        "status": {"replicas": int(status_replicas), "selector": selector_text or ""},
    }


def _replicas_from_scale(rp: ResourcePath, scale: object) -> int:
    if not isinstance(scale, dict) or scale.get("kind", "Scale") != "Scale":
        raise bad_request("the body of a scale request must be an autoscaling/v1 Scale")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid("Scale", rp.name, [Cause("spec.replicas", f"Invalid value: {replicas!r}: must be greater "
                                               "than or equal to 0")], "autoscaling")
    return replicas


class SubresourceHandlers(ObjectHandlers):
    def __init__(self, *args, pod_logs: PodLogs | None = None, pod_exec: PodExec | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pod_logs = pod_logs
        self.pod_exec = pod_exec

    async def exec(self, request: web.Request, rp: ResourcePath) -> web.StreamResponse:
        """pods/exec (kubectl exec over WebSocket): relayed to the node agent running the pod."""
        pod = await self.storage.get(rp.rt, rp.namespace, rp.name)
        if not (pod.get("spec") or {}).get("nodeName") or (pod.get("status") or {}).get("phase") != "Running":
            raise bad_request(f'pod {rp.name} is not running: cannot exec into a container in it')
        if self.pod_exec is None:
            raise APIError(503, "ServiceUnavailable", "this API server has no connection to node agents configured")
        return await self.pod_exec(pod, request)

    async def get(self, request: web.Request, rp: ResourcePath) -> web.Response:
        obj = await self.storage.get(rp.rt, rp.namespace, rp.name)
        if rp.subresource == "scale":
            return dump(scale_of(obj, rp.rt), negotiate(request))
        if rp.subresource == "log":
            return await self.log(request, rp, obj)
        return render_object(request, rp.rt, obj)

    async def update(self, request: web.Request, rp: ResourcePath) -> web.Response:
        opts = RequestOptions.from_request(request)
        body = parse_object(await read_body(request, self.body_limit), content_type(request))
        if rp.subresource == "scale":
            precondition = strategy.resource_version_of(body) if isinstance(body, dict) else None
            return await self._scale(request, rp, opts, lambda scale: _replicas_from_scale(rp, body), precondition)
        body = strategy.check_type(rp.rt, body)
        precondition = strategy.resource_version_of(body)
        if rp.subresource == "finalize":
            finalizers = list((body.get("spec") or {}).get("finalizers") or [])

            def finalize(old: dict) -> dict:
                new = jsonwire.clone(old)
                new.setdefault("spec", {})["finalizers"] = finalizers
                return new

            obj, warnings = await self.update_object(request, rp, opts, finalize, precondition, "finalize")
            return render_object(request, rp.rt, obj, 200, warning_headers(warnings))
        obj, warnings = await self.update_object(
            request, rp, opts, lambda old: strategy.prepare_status_update(rp.rt, body, old), precondition, "status")
        return render_object(request, rp.rt, obj, 200, warning_headers(warnings))

    async def patch(self, request: web.Request, rp: ResourcePath, subresource: str | None = None) -> web.Response:
        if rp.subresource == "status":
            return await super().patch(request, rp, "status")
        opts = RequestOptions.from_request(request)
        patch_type = media_type(content_type(request))
        body = await read_body(request, self.body_limit)

        def replicas(scale: dict) -> int:
            patched = apply_patch(rp.rt, scale, patch_type, body)
            rv = (patched.get("metadata") or {}).get("resourceVersion")
            if rv not in (None, "") and str(rv) != scale["metadata"]["resourceVersion"]:
                raise conflict(rp.rt.plural, rp.name, rp.rt.group)
            return _replicas_from_scale(rp, patched)

        return await self._scale(request, rp, opts, replicas, None)

    async def _scale(self, request, rp: ResourcePath, opts: RequestOptions, replicas_of, precondition):
        def prepare(old: dict) -> dict:
            new = jsonwire.clone(old)
            scale = rp.rt.custom.scale if rp.rt.custom is not None else None
            _set_at(new, scale.spec_replicas if scale else ".spec.replicas", replicas_of(scale_of(old, rp.rt)))
            return strategy.prepare_update(rp.rt, new, old)

        obj, warnings = await self.update_object(request, rp, opts, prepare, precondition, "scale")
        return dump(scale_of(obj, rp.rt), negotiate(request), 200, warning_headers(warnings))

    async def bind(self, request: web.Request, rp: ResourcePath) -> web.Response:
        """pods/binding: the scheduler's "run this pod on that node" (sets spec.nodeName once)."""
        opts = RequestOptions.from_request(request)
        binding = parse_object(await read_body(request, self.body_limit), content_type(request))
        if not isinstance(binding, dict) or binding.get("kind", "Binding") != "Binding":
            raise bad_request("the body of pods/binding must be a v1 Binding")
        target = binding.get("target") or {}
        if not isinstance(target, dict) or target.get("kind", "Node") not in ("Node", "") \
                or not isinstance(target.get("name"), str) or not target["name"]:
            raise invalid("Binding", rp.name, [Cause("target", "must name a Node (target.kind Node, target.name)",
                                                     "FieldValueRequired")])
        node = target["name"]

        def bind(old: dict) -> dict:
            current = (old.get("spec") or {}).get("nodeName")
            if current:
                raise APIError(409, "Conflict", f'pod {rp.name} is already assigned to node "{current}"',
                               name=rp.name, kind="pods")
            if old["metadata"].get("deletionTimestamp"):
                raise APIError(409, "Conflict", f"pod {rp.name} is being deleted, cannot be assigned to a host",
                               name=rp.name, kind="pods")
            new = jsonwire.clone(old)
            new.setdefault("spec", {})["nodeName"] = node
            status = new.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": strategy.now()})
            status["conditions"] = conditions
            return new

        _, warnings = await self.update_object(request, rp, opts, bind, None, "binding", track_fields=False)
        return dump(status_success(rp.rt, code=201), negotiate(request), 201, warning_headers(warnings))

    async def log(self, request: web.Request, rp: ResourcePath, pod: dict) -> web.Response:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise bad_request(f'pod "{rp.name}" is not scheduled to a node yet: it has no logs')
        if self.pod_logs is None:
            raise APIError(503, "ServiceUnavailable", f'logs of pod "{rp.name}" are kept by the node agent on '
                           f'node "{node}", and this API server has no connection to node agents configured')
        body = await self.pod_logs(pod, request.query)
        if isinstance(body, (bytes, str)):
            return web.Response(body=body, content_type="text/plain")
        # An async iterator of chunks (the node agent's stream): relayed as it comes, so `logs -f` follows.
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in body:
            await response.write(chunk)
        await response.write_eof()
        return response
