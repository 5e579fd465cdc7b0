"""One object of a resource: create (POST to its collection), get, update (PUT), patch, server-side apply."""

from __future__ import annotations

from aiohttp import web

from kfab.api import strategy
from kfab.api.apply import record_update, server_side_apply
from kfab.api.context import HandlerBase, RequestOptions, warning_headers
from kfab.objects.errors import (APIError, Cause, already_exists, bad_request, conflict, invalid,
                                 unsupported_media_type)
from kfab.api.decoding import strict_object_errors, strict_patch_errors
from kfab.api.patch import APPLY_PATCH, JSON_PATCH, PATCH_TYPES, apply_decoded_patch, decode_patch, media_type
from kfab.api.routing import ResourcePath
from kfab.api.serialize import content_type, decode_object, parse_object, read_body, render_object
from kfab.objects.meta import meta_of

# generateName: a fresh random suffix this many times before giving up on AlreadyExists.
GENERATE_NAME_ATTEMPTS = 8


class ObjectHandlers(HandlerBase):
    async def create(self, request: web.Request, rp: ResourcePath) -> web.Response:
        opts = RequestOptions.from_request(request)
        body, decode_warnings = await self._decoded_body(request, rp, opts)
        obj, warnings = await self.create_object(request, rp, body, opts)
        return render_object(request, rp.rt, obj, 201, warning_headers(decode_warnings + warnings))

    async def _decoded_body(self, request: web.Request, rp: ResourcePath,
                            opts: RequestOptions) -> tuple[object, list[str]]:
        decoded = decode_object(await read_body(request, self.body_limit), content_type(request))
        return decoded.value, strict_object_errors(rp.rt.kind, rp.rt.version, decoded, opts.field_validation)

    async def create_object(self, request: web.Request, rp: ResourcePath, body: object, opts: RequestOptions,
                            track_fields: bool = True) -> tuple[dict, list[str]]:
        rt = rp.rt
        prepared = strategy.prepare_create(rt, body, rp.namespace)
        if track_fields:
            prepared = record_update(None, prepared, opts.manager(request), rt=rt)
        meta = prepared["metadata"]
        generated = not meta.get("name")
        for _ in range(GENERATE_NAME_ATTEMPTS if generated else 1):
            obj = prepared
            if generated:
                obj = dict(prepared, metadata=dict(meta, name=strategy.generate_name(meta["generateName"])))
            try:
                async with self.admitted(request, rp, "CREATE", obj, None, opts) as (admitted, warnings):
                    if opts.dry_run:
                        if await self.storage.get_or_none(rt, rp.namespace, admitted["metadata"]["name"]):
                            raise already_exists(rt.plural, admitted["metadata"]["name"], rt.group)
                        return admitted, warnings
                    return await self.storage.create(rt, admitted), warnings
            except APIError as e:
                if not (generated and e.reason == "AlreadyExists"):
                    raise
        # As kube-apiserver: the generated names all collided; the client may retry.
        raise APIError(409, "AlreadyExists", f"{rt.plural} with generateName {meta['generateName']!r}: could not "
                       "find a free name, try again", retry_after_seconds=1)

    async def get(self, request: web.Request, rp: ResourcePath) -> web.Response:
        obj = await self.storage.get(rp.rt, rp.namespace, rp.name)
        return render_object(request, rp.rt, obj)

    async def update(self, request: web.Request, rp: ResourcePath) -> web.Response:
        opts = RequestOptions.from_request(request)
        body, decode_warnings = await self._decoded_body(request, rp, opts)
        body = strategy.check_type(rp.rt, body)
        body_name = body["metadata"].get("name")
        if body_name != rp.name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({rp.name})")
        precondition = strategy.resource_version_of(body)
        if strategy.allow_create_on_update(rp.rt) and precondition is None:
            if await self.storage.get_or_none(rp.rt, rp.namespace, rp.name) is None:
                obj, warnings = await self.create_object(request, rp, body, opts)
                return render_object(request, rp.rt, obj, 201, warning_headers(decode_warnings + warnings))
        obj, warnings = await self.update_object(
            request, rp, opts, lambda old: strategy.prepare_update(rp.rt, body, old), precondition)
        return render_object(request, rp.rt, obj, 200, warning_headers(decode_warnings + warnings))

    async def patch(self, request: web.Request, rp: ResourcePath, subresource: str | None = None) -> web.Response:
        """PATCH of the main resource or of `status` (the other subresources patch their own shapes)."""
        opts = RequestOptions.from_request(request)
        patch_type = media_type(content_type(request))
        if patch_type not in PATCH_TYPES:  # before the body is read, as kube-apiserver
            raise unsupported_media_type(PATCH_TYPES)
        body = await read_body(request, self.body_limit)
        if patch_type == APPLY_PATCH and subresource is None:
            return await self._apply(request, rp, body, opts)
        patch = decode_patch(patch_type, body)
        decode_warnings: list[str] = []

        def prepare(old: dict) -> dict:
            patched = apply_decoded_patch(rp.rt, old, patch_type, patch.value)
            decode_warnings[:] = strict_patch_errors(patch, opts.field_validation, patched, patch_type == JSON_PATCH)
            _check_patched_version(rp, patched, old)
            if subresource == "status":
                return strategy.prepare_status_update(rp.rt, patched, old)
            return strategy.prepare_update(rp.rt, patched, old)

        obj, warnings = await self.update_object(request, rp, opts, prepare, subresource=subresource)
        return render_object(request, rp.rt, obj, 200, warning_headers(decode_warnings + warnings))

    async def _apply(self, request: web.Request, rp: ResourcePath, body: bytes, opts: RequestOptions):
        """Server-side apply: create when absent, else merge the applied configuration by field ownership."""
        if not opts.field_manager:
            raise invalid("PatchOptions", "", [Cause("fieldManager", "is required for apply patch",
                                                     "FieldValueRequired")], "meta.k8s.io")
        applied = strategy.check_type(rp.rt, parse_object(body, APPLY_PATCH))
        meta = applied["metadata"]
        if meta.get("name") not in (None, rp.name):
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                              f"({rp.name})")
        meta["name"] = rp.name
        if rp.rt.namespaced:
            strategy.check_namespace(rp.rt, applied, rp.namespace)
        live = await self.storage.get_or_none(rp.rt, rp.namespace, rp.name)
        if live is None:
            new = server_side_apply(rp.rt, None, applied, opts.field_manager, opts.force)
            obj, warnings = await self.create_object(request, rp, new, opts, track_fields=False)
            return render_object(request, rp.rt, obj, 201, warning_headers(warnings))

        def prepare(old: dict) -> dict:
            merged = server_side_apply(rp.rt, old, applied, opts.field_manager, opts.force)
            _check_patched_version(rp, merged, old)
            return strategy.prepare_update(rp.rt, merged, old)

        obj, warnings = await self.update_object(request, rp, opts, prepare, track_fields=False)
        return render_object(request, rp.rt, obj, 200, warning_headers(warnings))


def _check_patched_version(rp: ResourcePath, patched: dict, old: dict) -> None:
    """A patch that sets metadata.resourceVersion is a precondition (kubectl label --resource-version)."""
    if not isinstance(patched.get("metadata"), dict):  # {"metadata": 1} and the like
        raise bad_request(f"metadata must be an object in {rp.rt.kind}")
    rv = meta_of(patched).get("resourceVersion")
    if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
        raise conflict(rp.rt.plural, rp.name, rp.rt.group)
