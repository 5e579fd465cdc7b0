"""DELETE of one object and of a collection, with Kubernetes' deletion semantics.

An object goes away at once unless something must happen first: then it is only marked
(`metadata.deletionTimestamp`) and goes away when the last finalizer is removed. Things that must happen
first: finalizers already on it, `propagationPolicy` Foreground/Orphan (the `foregroundDeletion`/`orphan`
finalizers, which the garbage collector acts on), a graceful pod shutdown on its node (the node agent
deletes the pod again with grace 0 when its containers stopped), a namespace's `spec.finalizers`
(the namespace controller empties the namespace first).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from aiohttp import web

from kfab.objects import jsonwire
from kfab.api import protobuf, strategy
from kfab.api.context import HandlerBase, RequestOptions, RetryWrite, warning_headers
from kfab.objects.errors import APIError, bad_request, conflict
from kfab.api.routing import ResourcePath
from kfab.api.serialize import dump, negotiate, read_body, render_object, status_success
from kfab.objects.crd import CLEANUP_FINALIZER, CRD_KIND
from kfab.objects.registry import ResourceType, delete_returns_object
from kfab.objects.selectors import parse_field_selector, parse_label_selector
from kfab.objects.meta import spec_of, status_of

POLICIES = ("Foreground", "Background", "Orphan")
GC_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}
DEFAULT_POD_GRACE = 30
DELETE_RETRIES = 8


@dataclass(frozen=True)
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False
    orphan_dependents: bool | None = None  # the deprecated spelling; only it changes the answer's code


def _int_or_400(value, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer, got {value!r}") from None


# pkg/registry/batch/job/storage: batch/v1 Jobs keep their pods unless the client chose a policy.
JOB_ORPHAN_WARNING = ("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
                      "to remove them or set propagationPolicy=Orphan to suppress this warning")


def kind_default_policy(rt: ResourceType, opts: DeleteOptions) -> tuple[DeleteOptions, list[str]]:
    """The kind's default propagation when the client named none (jobStrategy's OrphanDependents for batch/v1,
    kept for compatibility), with the warning kube-apiserver sends then."""
    if (rt.group, rt.version, rt.kind) == ("batch", "v1", "Job") and opts.propagation is None \
            and opts.orphan_dependents is None:
        return dataclasses.replace(opts, propagation="Orphan"), [JOB_ORPHAN_WARNING]
    return opts, []


def parse_delete_options(query, body: bytes, content_type: str = "") -> DeleteOptions:
    """DeleteOptions from the body (JSON, or protobuf as kubectl drain sends it) and the query string; the query
    wins where both say something."""
    data: dict = {}
    if content_type.split(";")[0].strip().lower() == protobuf.MEDIA_TYPE:
        data = protobuf.decode(body)
    elif body.strip():
        try:
            data = json.loads(body)
        except ValueError as e:
            raise bad_request(f"couldn't decode DeleteOptions: {e}") from None
        if not isinstance(data, dict) or data.get("kind", "DeleteOptions") != "DeleteOptions":
            raise bad_request("the body of a DELETE must be DeleteOptions")
    return delete_options_of(data, query)


def delete_options_of(data: dict, query) -> DeleteOptions:
    """DeleteOptions from its JSON shape (a DELETE's body, an Eviction's deleteOptions) and the query string."""
    grace = _int_or_400(query.get("gracePeriodSeconds", data.get("gracePeriodSeconds")), "gracePeriodSeconds")
    if grace is not None and grace < 0:
        grace = 0
    policy = query.get("propagationPolicy", data.get("propagationPolicy"))
    orphan = query.get("orphanDependents", data.get("orphanDependents"))
    orphan_dependents = None if orphan is None else str(orphan).lower() in ("true", "1")
    if policy is not None and policy not in POLICIES:
        raise APIError(422, "Invalid", f"DeleteOptions.meta.k8s.io is invalid: propagationPolicy: Unsupported "
                       f"value: {policy!r}: supported values: \"Foreground\", \"Background\", \"Orphan\"")
    if orphan is not None:
        if policy is not None:
            raise APIError(422, "Invalid", "DeleteOptions.meta.k8s.io is invalid: propagationPolicy: Invalid value: "
                           "orphanDependents and propagationPolicy cannot both be set")
        policy = "Orphan" if orphan_dependents else "Background"
    pre = data.get("preconditions") or {}
    dry_run = bool(query.getall("dryRun", [])) or bool(data.get("dryRun"))
    return DeleteOptions(grace, policy, pre.get("uid"), pre.get("resourceVersion"), dry_run, orphan_dependents)


def _pod_grace(obj: dict, opts: DeleteOptions) -> int:
    spec, status = spec_of(obj), status_of(obj)
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0  # no node agent runs it: nothing to shut down gracefully
    if opts.grace_period is not None:
        return opts.grace_period
    return int(spec.get("terminationGracePeriodSeconds", DEFAULT_POD_GRACE))


def plan_deletion(rt: ResourceType, obj: dict, opts: DeleteOptions) -> dict | None:
    """None: delete now. Otherwise the object to store, marked for deletion."""
    new = jsonwire.clone(obj)
    meta = new["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if opts.propagation in GC_FINALIZERS:
        wanted = GC_FINALIZERS[opts.propagation]
        finalizers = [f for f in finalizers if f not in GC_FINALIZERS.values()] + [wanted]
    elif opts.propagation == "Background":
        finalizers = [f for f in finalizers if f not in GC_FINALIZERS.values()]
    if (rt.group, rt.kind) == CRD_KIND and not meta.get("deletionTimestamp") and CLEANUP_FINALIZER not in finalizers:
        finalizers.append(CLEANUP_FINALIZER)  # its objects go first (kfab.api.crd_status), as in kube-apiserver
    grace = _pod_grace(obj, opts) if (rt.group, rt.kind) == ("", "Pod") else 0
    is_namespace = (rt.group, rt.kind) == ("", "Namespace")
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)

    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds") or 0
        if grace < current:  # a shorter grace period overrides (the node agent's final grace-0 delete)
            meta["deletionGracePeriodSeconds"] = grace
            meta["deletionTimestamp"] = strategy.timestamp_after(grace)
        if strategy.ready_to_vanish(new):
            return None
        return new

    if not finalizers and grace == 0 and not (is_namespace and spec_of(new).get("finalizers")):
        return None
    meta["deletionTimestamp"] = strategy.timestamp_after(grace)
    meta["deletionGracePeriodSeconds"] = grace
    if "generation" in meta:
        meta["generation"] = int(meta["generation"]) + 1
    if is_namespace:
        new["status"] = dict(new.get("status") or {}, phase="Terminating")
    return new


class DeleteHandlers(HandlerBase):
    async def delete(self, request: web.Request, rp: ResourcePath) -> web.Response:
        opts = parse_delete_options(request.query, await read_body(request, self.body_limit),
                                    request.headers.get("Content-Type", ""))
        opts, kind_warnings = kind_default_policy(rp.rt, opts)
        obj, deleted, warnings = await self.delete_object(request, rp, rp.name, opts)
        headers = warning_headers(kind_warnings + list(warnings))
        if deleted and not delete_returns_object(rp.rt):
            return dump(status_success(rp.rt, obj, code=None), negotiate(request), 200, headers)
        # Still there (finalizers, graceful shutdown): the marked object. kube-apiserver answers 202 only when
        # the caller also said orphanDependents=false, "so as not to break existing clients" (handlers/delete.go).
        code = 202 if not deleted and opts.orphan_dependents is False else 200
        return render_object(request, rp.rt, obj, code, headers)

    async def delete_object(self, request: web.Request, rp: ResourcePath, name: str,
                            opts: DeleteOptions) -> tuple[dict, bool, list[str]]:
        """(object, deleted now?, warnings)."""
        rt = rp.rt
        req_opts = RequestOptions(dry_run=opts.dry_run)
        for _ in range(DELETE_RETRIES):
            obj = await self.storage.get(rt, rp.namespace, name)
            meta = obj["metadata"]
            if opts.uid is not None and opts.uid != meta.get("uid"):
                raise APIError(409, "Conflict", f"Precondition failed: UID in precondition: {opts.uid}, UID in "
                               f"object meta: {meta.get('uid')}", name=name, group=rt.group, kind=rt.plural)
            if opts.resource_version is not None and opts.resource_version != meta["resourceVersion"]:
                raise APIError(409, "Conflict", f"Precondition failed: ResourceVersion in precondition: "
                               f"{opts.resource_version}, ResourceVersion in object meta: {meta['resourceVersion']}",
                               name=name, group=rt.group, kind=rt.plural)
            marked = plan_deletion(rt, obj, opts)
            rv = int(meta["resourceVersion"])
            try:
                async with self.admitted(request, rp, "DELETE", None, obj, req_opts, name=name) as (_, warnings):
                    if opts.dry_run:
                        return (marked or obj), marked is None, warnings
                    try:
                        if marked is None:
                            return await self.deleted(rp, obj, rv), True, warnings
                        if marked == obj:
                            return obj, False, warnings
                        return await self.storage.update(rt, marked, rv), False, warnings
                    except APIError as e:
                        if e.reason == "Conflict":
                            raise RetryWrite() from None
                        raise
            except RetryWrite:
                continue
        raise conflict(rt.plural, name, rt.group)

    async def delete_collection(self, request: web.Request, rp: ResourcePath) -> web.Response:
        opts = parse_delete_options(request.query, await read_body(request, self.body_limit),
                                    request.headers.get("Content-Type", ""))
        opts, _ = kind_default_policy(rp.rt, opts)
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), rp.rt.kind)
        items, _ = await self.storage.list(rp.rt, rp.namespace)
        for obj in items:
            meta = obj["metadata"]
            if not (labels.matches(meta.get("labels")) and fields.matches(obj)):
                continue
            target = ResourcePath(rp.rt, meta.get("namespace"), meta["name"])
            try:
                await self.delete_object(request, target, meta["name"], opts)
            except APIError as e:
                if e.code != 404:  # already gone: what deletecollection wanted
                    raise
        return dump(status_success(rp.rt), negotiate(request))
