"""The API server's aiohttp Application: middlewares, the routing table, and the resource dispatcher.

Every request goes: errors (any failure becomes a Status) -> authentication (401) -> impersonation
(Impersonate-* headers, 403) -> authorization (403) -> a route. The routing table, top to bottom:

    /healthz /livez /readyz                  health (no credentials needed, as kube-apiserver)
    /version /api /api/v1 /apis /apis/...    discovery
    /openapi/v2 /openapi/v3[/...]            OpenAPI documents (kubectl validation, explain)
    /api/v1/<resource path>                  core group resources   } parsed by kfab.api.routing,
    /apis/<group>/<version>/<resource path>  named group resources  } dispatched by verb below
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from kfab.api.access_review import self_subject_access_review, self_subject_review, self_subject_rules_review
from kfab.api.audit import AuditLog
from kfab.api.auth import Authenticator, forbidden_error, request_attributes
from kfab.api.collection import ListHandler
from kfab.api.crd_serving import CustomResourceServing
from kfab.api.metrics import MetricsProvider
from kfab.api.deletion import DeleteHandlers
from kfab.api.eviction import EvictionHandler
from kfab.api.discovery import Discovery
from kfab.api.rbac import RBACAuthorizer
from kfab.objects.errors import APIError, unauthorized
from kfab.api.impersonation import impersonated_user
from kfab.api.inflight import InFlight, InFlightLimits
from kfab.api.openapi import add_openapi_routes
from kfab.api.portforward import attach, port_forward
from kfab.api.resources import ObjectHandlers
from kfab.api.routing import ResourcePath, parse_resource_path, request_verb
from kfab.api.serialize import content_type, dump, parse_object, read_body
from kfab.api.storage import ResourceStorage
from kfab.api.serviceaccount_tokens import TokenSigner
from kfab.api.subresources import PodExec, PodLogs, SubresourceHandlers
from kfab.api.token_request import TokenRequests
from kfab.api.watch import WatchHandler, WatchSource
from kfab.api.admission import AdmissionChain
from kfab.objects.registry import REGISTRY, ResourceRegistry
from kfab.store.base import Store

log = logging.getLogger(__name__)

# kube-apiserver's request body limit (3 MiB): etcd's default value limit is 1.5 MiB, plus encoding slack.
BODY_LIMIT = 3 * 1024 * 1024
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


@dataclass
class APIServices:
    """What the API server is built from; each part is passed in, none fetched from globals."""

    store: Store
    watch_source: WatchSource  # WatchHub.subscribe (or Store.watch): (prefix, after_revision) -> events
    authenticator: Authenticator
    authorizer: RBACAuthorizer
    admission: AdmissionChain
    registry: ResourceRegistry = field(default_factory=lambda: REGISTRY)
    pod_logs: PodLogs | None = None
    pod_exec: PodExec | None = None
    token_signer: TokenSigner | None = None  # serviceaccounts/token; None: answered 503
    custom_resources: CustomResourceServing | None = None  # keeps `registry` in step with the CRDs
    metrics: MetricsProvider | None = None  # metrics.k8s.io; None: answered 503
    body_limit: int = BODY_LIMIT
    ready: bool = True
    inflight: InFlightLimits = field(default_factory=InFlightLimits)
    audit: AuditLog | None = None  # outermost: sees every authenticated request's final status


@web.middleware
async def status_errors(request: web.Request, handler):
    """Every failure leaves as a Kubernetes Status object with the right code and reason."""
    try:
        return await handler(request)
    except APIError as e:
        return dump(e.status(), "object", e.code, _retry_after(e))
    except web.HTTPRequestEntityTooLarge as e:
        return dump(APIError(413, "RequestEntityTooLarge", f"the request body is too large: {e.text}").status(),
                    "object", 413)
    except web.HTTPNotFound:
        return dump(APIError(404, "NotFound", "the server could not find the requested resource").status(),
                    "object", 404)
    except web.HTTPMethodNotAllowed:
        return dump(APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                             "resource").status(), "object", 405)
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001 - a bug must not leave a client without an answer
        log.exception("%s %s failed", request.method, request.path)
        request["panicked"] = True  # the audit event's stage is Panic, as upstream's for a handler's panic
        return dump(APIError(500, "InternalError", "an internal error occurred; the API server log has the "
                             "details").status(), "object", 500)


def _retry_after(e: APIError) -> dict | None:
    return {"Retry-After": str(e.retry_after_seconds)} if e.retry_after_seconds else None


def build_app(services: APIServices) -> web.Application:
    audit = [services.audit.middleware()] if services.audit is not None else []
    app = web.Application(middlewares=[*audit, status_errors, _auth_middleware(services),
                                       InFlight(services.inflight).middleware()],
                          client_max_size=services.body_limit)
    if services.audit is not None:
        app.on_response_prepare.append(services.audit.on_response_prepare)
    api = ResourceAPI(services)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, _health(services))
    Discovery(services.registry).add_routes(app)
    add_openapi_routes(app, services.registry)
    app.router.add_route("*", "/api/{version}/{tail:.+}", api.dispatch)
    app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", api.dispatch)
    app["services"] = services
    return app


def _health(services: APIServices):
    async def health(request: web.Request) -> web.Response:
        if not services.ready:
            return web.Response(status=503, text="not ready")
        return web.Response(text="ok")
    return health


def _auth_middleware(services: APIServices):
    @web.middleware
    async def authenticate_and_authorize(request: web.Request, handler):
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        user = await services.authenticator.authenticate_request(request)
        if user is None:
            raise unauthorized()
        if services.audit is not None:
            services.audit.authenticated(request, user)  # upstream audits before impersonating and authorizing
        user = await impersonated_user(services.authorizer, user, request.headers)
        request["user"] = user
        attrs = request_attributes(user, request.method, request.path, request.query_string)
        allowed, reason = await services.authorizer.authorize(attrs)
        if not allowed:
            raise forbidden_error(attrs, reason)
        return await handler(request)
    return authenticate_and_authorize


class ResourceAPI:
    """Resource requests: path -> (resource, namespace, name, subresource) -> the handler for the verb."""

    def __init__(self, services: APIServices):
        self.services = services
        storage = ResourceStorage(services.store)
        args = (storage, services.admission, services.body_limit, services.authorizer)
        self.objects = ObjectHandlers(*args)
        self.deletes = DeleteHandlers(*args)
        self.subresources = SubresourceHandlers(*args, pod_logs=services.pod_logs,
                                                pod_exec=services.pod_exec)
        self.evictions = EvictionHandler(*args)
        self.tokens = TokenRequests(storage, services.token_signer, services.body_limit)
        self.lists = ListHandler(storage)
        self.watches = WatchHandler(storage, services.watch_source)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        rp = await self.resource_path(request)
        verb = request_verb(request.method, rp, request.query)
        if rp.subresource is None and verb not in rp.rt.verbs:
            raise APIError(405, "MethodNotAllowed", f"{rp.rt.plural} do not support {verb}")
        if rp.rt.group in ("authorization.k8s.io", "authentication.k8s.io"):
            return await self.review(request, rp)
        if rp.rt.group == "metrics.k8s.io":
            return await self.resource_metrics(request, rp, verb)
        if rp.subresource is not None:
            return await self.subresource(request, rp, verb)
        if verb == "watch":
            return await self.watches.watch(request, rp)
        handler = {
            "list": self.lists.list,
            "get": self.objects.get,
            "create": self.objects.create,
            "update": self.objects.update,
            "patch": self.objects.patch,
            "delete": self.deletes.delete,
            "deletecollection": self.deletes.delete_collection,
        }[verb]
        if rp.rt.namespaced and rp.namespace is None and verb not in ("list", "watch"):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        return await handler(request, rp)

    async def resource_path(self, request: web.Request) -> ResourcePath:
        group, version, tail = request.match_info.get("group", ""), request.match_info["version"], \
            request.match_info["tail"]
        try:
            return parse_resource_path(group, version, tail, self.services.registry)
        except APIError as e:
            crds = self.services.custom_resources
            if e.code != 404 or crds is None or not group:
                raise
            # A CRD established a moment ago may not have reached this server's watch yet.
            await crds.refresh()
            return parse_resource_path(group, version, tail, self.services.registry)

    async def subresource(self, request: web.Request, rp: ResourcePath, verb: str) -> web.StreamResponse:
        subs = self.subresources
        if rp.subresource == "binding" and verb == "create":
            return await subs.bind(request, rp)
        if rp.subresource == "token" and verb == "create":
            return await self.tokens.create(request, rp)
        if rp.subresource == "eviction" and verb == "create":
            return await self.evictions.evict(request, rp)
        if verb == "get" and rp.subresource == "exec":
            return await subs.exec(request, rp)
        if verb == "get" and rp.subresource in ("portforward", "attach"):
            relay = port_forward if rp.subresource == "portforward" else attach
            return await relay(await subs.storage.get(rp.rt, rp.namespace, rp.name), request, subs.pod_exec)
        if verb == "get" and rp.subresource in ("status", "scale", "log"):
            return await subs.get(request, rp)
        if verb == "update" and rp.subresource in ("status", "scale", "finalize"):
            return await subs.update(request, rp)
        if verb == "patch" and rp.subresource in ("status", "scale"):
            return await subs.patch(request, rp)
        raise APIError(405, "MethodNotAllowed", f"{rp.rt.plural}/{rp.subresource} does not support {verb}")

    async def resource_metrics(self, request: web.Request, rp: ResourcePath, verb: str) -> web.Response:
        """NodeMetrics and PodMetrics: read-only, from the last scrapes of the node agents."""
        metrics = self.services.metrics
        if metrics is None:
            raise APIError(503, "ServiceUnavailable", "the metrics API is not enabled on this API server")
        if verb == "get":
            return dump(await metrics.get(rp.rt.plural, rp.namespace, rp.name), "object")
        if verb == "list":
            return dump(await metrics.list(rp.rt.plural, rp.namespace, request.query), "object")
        raise APIError(405, "MethodNotAllowed", f"{rp.rt.plural}.metrics.k8s.io only support get and list")

    async def review(self, request: web.Request, rp: ResourcePath) -> web.Response:
        """Access reviews are answered, never stored (kubectl auth can-i, kubectl auth whoami)."""
        if request.method != "POST" or not rp.is_collection:
            raise APIError(405, "MethodNotAllowed", f"{rp.rt.plural} only support create")
        body = parse_object(await read_body(request, self.services.body_limit), content_type(request))
        if rp.rt.kind == "SelfSubjectAccessReview":
            answer = await self_subject_access_review(self.services.authorizer, request["user"], body)
        elif rp.rt.kind == "SelfSubjectRulesReview":
            answer = self_subject_rules_review(self.services.authorizer, request["user"], body)
        elif rp.rt.kind == "SelfSubjectReview":
            answer = self_subject_review(request["user"], body)
        else:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        return dump(answer, "object", 201)
