"""What every resource handler shares: the query options Kubernetes defines, admission around each write,
and the read-modify-write loop of updates (kube-apiserver's GuaranteedUpdate)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from aiohttp import web
from multidict import CIMultiDict

from kfab.api import strategy
from kfab.api.apply import record_update
from kfab.objects.errors import APIError, bad_request, conflict
from kfab.api.rbac_escalation import check_rbac_write
from kfab.api.routing import ResourcePath
from kfab.api.storage import UPDATE_RETRIES, ResourceStorage
from kfab.api.admission import AdmissionChain, AdmissionRequest

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass(frozen=True)
class RequestOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # kube-apiserver's default when the client sends none
    force: bool = False

    @classmethod
    def from_request(cls, request: web.Request) -> "RequestOptions":
        query = request.query
        dry_run_values = query.getall("dryRun", [])
        for value in dry_run_values:
            if value != "All":
                raise bad_request(f'Invalid dryRun value {value!r}: supported values: "All"')
        validation = query.get("fieldValidation") or "Warn"
        if validation not in FIELD_VALIDATION:
            raise bad_request(f"fieldValidation {validation!r} is invalid: valid values are "
                              f"{', '.join(FIELD_VALIDATION)}")
        manager = query.get("fieldManager", "")
        if len(manager) > 128:
            raise bad_request("fieldManager: Too long: may not be more than 128 bytes")
        force = (query.get("force") or "").lower() in ("true", "1")
        return cls(bool(dry_run_values), manager, validation, force)

    def manager(self, request: web.Request) -> str:
        # Without ?fieldManager=, kube-apiserver names the manager after the User-Agent up to its first "/".
        return self.field_manager or (request.headers.get("User-Agent", "").split("/")[0][:128] or "unknown")


def warning_headers(warnings: list[str]) -> CIMultiDict | None:
    # One `Warning: 299 - "text"` header per message, as kube-apiserver sends them (kubectl prints them).
    if not warnings:
        return None
    headers: CIMultiDict = CIMultiDict()
    for w in dict.fromkeys(warnings):
        escaped = w.replace("\\", "\\\\").replace('"', '\\"')
        headers.add("Warning", f'299 - "{escaped}"')
    return headers


class RetryWrite(Exception):
    """Another writer changed the object between our read and our write: read it again."""


def unchanged(new: dict, old: dict) -> bool:
    # kube-apiserver skips the write (and keeps the resourceVersion) when an update changes nothing.
    def strip(o: dict) -> dict:
        return dict(o, metadata={k: v for k, v in o["metadata"].items() if k != "resourceVersion"})
    return strip(new) == strip(old)


class HandlerBase:
    """Storage and admission, the two services every resource handler uses."""

    def __init__(self, storage: ResourceStorage, admission: AdmissionChain, body_limit: int, authorizer=None):
        self.storage = storage
        self.admission = admission
        self.body_limit = body_limit
        self.authorizer = authorizer  # RBACAuthorizer: RBAC writes may not grant more than the writer holds

    @contextlib.asynccontextmanager
    async def admitted(self, request: web.Request, rp: ResourcePath, operation: str, obj: dict | None,
                       old: dict | None, opts: RequestOptions, subresource: str | None = None,
                       name: str | None = None) -> AsyncIterator[tuple[dict | None, list[str]]]:
        """Admission around one write: what it allocated is kept if the block succeeds, freed if it raises."""
        if name is None:
            name = ((obj or old or {}).get("metadata") or {}).get("name", "")
        req = AdmissionRequest(
            operation=operation, resource=rp.rt, subresource=subresource, namespace=rp.namespace, name=name,
            obj=obj, old=old, user=request.get("user"), dry_run=opts.dry_run,
            field_validation=opts.field_validation)
        try:
            async with self.admission.admitted(req) as (admitted, warnings):
                if operation != "DELETE" and self.authorizer is not None:
                    await check_rbac_write(self.authorizer, request.get("user"), rp.rt, rp.namespace, admitted)
                yield admitted, list(warnings or [])
        finally:  # a refusal is audited with the annotations that explain it
            if req.audit_annotations:
                request.setdefault("audit_annotations", {}).update(req.audit_annotations)

    async def deleted(self, rp: ResourcePath, obj: dict, expected: int) -> dict:
        """Remove from the store, then let admission free what the object held (a Service's IPs/ports)."""
        gone = await self.storage.delete(rp.rt, obj, expected)
        await self.admission.after_delete(rp.rt, gone)
        return gone

    async def update_object(self, request: web.Request, rp: ResourcePath, opts: RequestOptions,
                            prepare: Callable[[dict], dict], precondition: int | None = None,
                            subresource: str | None = None, track_fields: bool = True) -> tuple[dict, list[str]]:
        """Read, `prepare(old)` the new object, admit, compare-and-swap; again from the read when another
        writer got in between (unless the client named a resourceVersion: then that is a 409).

        Dry run stores nothing. A terminating object whose last finalizer this write removed is deleted.
        """
        for _ in range(UPDATE_RETRIES):
            old = await self.storage.get(rp.rt, rp.namespace, rp.name)
            old_rv = int(old["metadata"]["resourceVersion"])
            if precondition is not None and precondition != old_rv:
                raise conflict(rp.rt.plural, rp.name, rp.rt.group)
            new = prepare(old)
            if track_fields:
                new = record_update(old, new, opts.manager(request), rt=rp.rt, subresource=subresource or "")
            try:
                async with self.admitted(request, rp, "UPDATE", new, old, opts, subresource) as (obj, warnings):
                    if unchanged(obj, old):
                        return old, warnings
                    if opts.dry_run:  # what would be stored, still at the version it would replace
                        return dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(old_rv))), warnings
                    try:
                        stored = await self.storage.update(rp.rt, obj, old_rv)
                    except APIError as e:
                        if e.reason == "Conflict" and precondition is None:
                            raise RetryWrite() from None
                        raise
            except RetryWrite:
                continue
            if strategy.ready_to_vanish(stored):
                try:
                    return await self.deleted(rp, stored, int(stored["metadata"]["resourceVersion"])), warnings
                except APIError as e:
                    if e.code not in (404, 409):  # someone else deleted or changed it first: theirs stands
                        raise
            return stored, warnings
        raise conflict(rp.rt.plural, rp.name, rp.rt.group)
