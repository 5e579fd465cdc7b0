"""The audit log: JSON lines in kube-apiserver's audit.k8s.io/v1 Event shape, per request stage, by policy.

A Policy (audit.k8s.io/v1, --audit-policy-file) is a list of rules; the first rule matching a request gives
its level:
  None             not logged
  Metadata         who, what (verb, objectRef, requestURI), from where, when, the response code
  Request          and the request body
  RequestResponse  and the response body
A rule matches on users, userGroups, verbs, resources ([{group, resources: [plural or plural/subresource]}]),
namespaces and nonResourceURLs (a trailing * matches a prefix); an empty selector matches everything.
Without a policy file, --audit-log-path logs every request at --audit-level (default Metadata).

Stages, as upstream: RequestReceived once the user is known (before authorization), ResponseStarted when a
long-running request (watch, proxy, exec/attach/portforward/log) sends its headers, ResponseComplete when the
response is done, Panic instead when the handler failed with an unexpected error (the client got a 500). A
policy's omitStages (top level and per rule) leaves stages out; --audit-level without a policy file omits
RequestReceived (one line per ordinary request). The events of one request share an auditID, which every
response carries as the Audit-Id header. Admission's audit annotations (Pod Security's enforce-policy,
audit-violations, exempt) are in the event's `annotations`.

The file is the owner's only (0600: request bodies may hold Secrets) and rotates at --audit-log-maxsize MB,
keeping --audit-log-maxbackup old files (logging.handlers.RotatingFileHandler).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import logging.handlers
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from kfab.api import protobuf
from kfab.api.auth import request_attributes
from kfab.api.config_file import load_kind

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# upstream's BasicLongRunningRequestCheck: these verbs and subresources hold the connection open
LONG_RUNNING_VERBS = {"watch", "proxy"}
LONG_RUNNING_SUBRESOURCES = {"attach", "exec", "proxy", "log", "portforward"}


@dataclass
class Rule:
    level: str
    users: list[str] = field(default_factory=list)
    user_groups: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    non_resource_urls: list[str] = field(default_factory=list)
    omit_stages: list[str] = field(default_factory=list)

    def matches(self, attrs) -> bool:
        user = attrs.user
        if self.users and user.name not in self.users:
            return False
        if self.user_groups and not set(self.user_groups) & set(user.groups):
            return False
        if self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            if self.resources or self.namespaces:
                return False
            return not self.non_resource_urls or any(
                attrs.path == u or (u.endswith("*") and attrs.path.startswith(u[:-1])) for u in self.non_resource_urls)
        if self.non_resource_urls:
            return False
        if self.namespaces and attrs.namespace not in self.namespaces:
            return False
        if self.resources:
            full = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
            return any(attrs.api_group == (g.get("group") or "")
                       and (not g.get("resources") or full in g["resources"] or attrs.resource in g["resources"]
                            or f"{attrs.resource}/*" in g["resources"])
                       for g in self.resources)
        return True


def _stages(path: Path, where: str, value) -> list[str]:
    stages = list(value or [])
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"{path}: {where}: {stage!s} is not one of {', '.join(STAGES)}")
    return stages


@dataclass
class Policy:
    rules: list[Rule]
    omit_stages: list[str] = field(default_factory=list)

    @classmethod
    def everything_at(cls, level: str) -> "Policy":
        if level not in LEVELS:
            raise ValueError(f"audit level {level} is not one of {', '.join(LEVELS)}")
        return cls([Rule(level)], omit_stages=["RequestReceived"])

    @classmethod
    def load(cls, path: Path) -> "Policy":
        doc = load_kind(path, "Policy")
        rules = []
        for i, r in enumerate(doc.get("rules") or []):
            if not isinstance(r, dict) or r.get("level") not in LEVELS:
                raise ValueError(f"{path}: rules[{i}].level must be one of {', '.join(LEVELS)}")
            rules.append(Rule(r["level"], list(r.get("users") or []), list(r.get("userGroups") or []),
                              list(r.get("verbs") or []), list(r.get("resources") or []),
                              list(r.get("namespaces") or []), list(r.get("nonResourceURLs") or []),
                              _stages(path, f"rules[{i}].omitStages", r.get("omitStages"))))
        return cls(rules, _stages(path, "omitStages", doc.get("omitStages")))

    def level(self, attrs) -> str:
        return self.decide(attrs)[0]

    def decide(self, attrs) -> tuple[str, set[str]]:
        """(level, stages left out) of the first matching rule."""
        for rule in self.rules:
            if rule.matches(attrs):
                return rule.level, set(self.omit_stages) | set(rule.omit_stages)
        return "None", set()


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """Every file it starts after a rotation is 0600 too (the stdlib opens with the process umask)."""

    def _open(self):
        return os.fdopen(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a",
                         encoding=self.encoding)


def open_log(path: Path, max_size_mb: int = 100, max_backups: int = 10) -> logging.Handler:
    """A handler writing bare lines to `path` (0600), rotated by size."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    handler = _PrivateRotatingFile(path, maxBytes=max_size_mb * 1024 * 1024, backupCount=max_backups)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _body(data: bytes | None, content_type: str = "") -> object:
    """A body as JSON, as kube-apiserver logs it (protobuf bodies converted; YAML and others left out)."""
    if not data:
        return None
    try:
        if content_type.split(";")[0].strip() == protobuf.MEDIA_TYPE:
            return protobuf.decode(data)
        return json.loads(data)
    except Exception:  # noqa: BLE001 - a body the handler refused is still logged, without its content
        return None


@dataclass
class _Request:
    """What the events of one request share, fixed when its user is known."""

    audit_id: str
    user: object  # as authenticated; an impersonated one is the event's impersonatedUser
    level: str
    omit: set[str]
    attrs: object
    received: str
    long_running: bool
    started: bool = False
    status: int | None = None  # of the response whose headers went out


class AuditLog:
    def __init__(self, policy: Policy, handler: logging.Handler):
        self.policy = policy
        self.handler = handler  # called directly: the logging module's dispatch cost as much as the event

    def middleware(self):
        @web.middleware
        async def audit(request: web.Request, handler):
            request["audit_received"] = _now()
            response = None
            code = 500
            try:
                response = await handler(request)
                code = response.status
                return response
            except web.HTTPException as e:
                code = e.status
                raise
            except asyncio.CancelledError:  # the client went (a watch it stopped): what it was sent stands
                ctx = request.get("audit")
                code = ctx.status if ctx is not None and ctx.status is not None else code
                raise
            finally:
                await self._complete(request, code, response)
        return audit

    def authenticated(self, request: web.Request, user) -> None:
        """The user is known (the auth middleware calls this before impersonation and authorization, as
        upstream's filter order): the request's level by that user, and its RequestReceived event."""
        attrs = request_attributes(user, request.method, request.path, request.query_string)
        level, omit = self.policy.decide(attrs)
        audit_id = request.headers.get("Audit-ID") or str(uuid.uuid4())
        long_running = attrs.verb in LONG_RUNNING_VERBS or attrs.subresource in LONG_RUNNING_SUBRESOURCES
        ctx = _Request(audit_id, user, level, omit, attrs, request.get("audit_received") or _now(), long_running)
        request["audit"] = ctx
        if level != "None" and "RequestReceived" not in omit:
            self._write(self._event(request, ctx, "RequestReceived"))

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's signal before the headers go: the Audit-Id header, and ResponseStarted for a
        long-running request (a watch's events follow for minutes; upstream logs that it began)."""
        ctx: _Request | None = request.get("audit")
        if ctx is None:
            return
        response.headers["Audit-Id"] = ctx.audit_id
        ctx.status = response.status
        if ctx.long_running and not ctx.started and ctx.level != "None" and "ResponseStarted" not in ctx.omit:
            ctx.started = True
            event = self._event(request, ctx, "ResponseStarted")
            event["responseStatus"] = {"metadata": {}, "code": response.status}
            self._write(event)

    def _event(self, request: web.Request, ctx: _Request, stage: str) -> dict:
        attrs, user, acting = ctx.attrs, ctx.user, request.get("user")
        event: dict = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": ctx.level, "auditID": ctx.audit_id,
            "stage": stage, "requestURI": request.path_qs, "verb": attrs.verb,
            "user": {"username": user.name, "groups": list(user.groups)},
        }
        if acting is not None and acting != user:
            event["impersonatedUser"] = {"username": acting.name, "groups": list(acting.groups)}
        event |= {
            "sourceIPs": [request.remote] if request.remote else [],
            "userAgent": request.headers.get("User-Agent", ""),
        }
        if attrs.resource_request:
            ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": attrs.name,
                   "apiGroup": attrs.api_group, "subresource": attrs.subresource}
            event["objectRef"] = {k: v for k, v in ref.items() if v}
            version = request.match_info.get("version")
            if version:
                event["objectRef"]["apiVersion"] = version
        event["requestReceivedTimestamp"] = ctx.received
        event["stageTimestamp"] = ctx.received if stage == "RequestReceived" else _now()
        return event

    def _write(self, event: dict) -> None:
        self.handler.handle(logging.makeLogRecord({"msg": json.dumps(event, separators=(",", ":"))}))

    async def _complete(self, request: web.Request, code: int, response) -> None:
        ctx: _Request | None = request.get("audit")
        if ctx is None:
            return  # unauthenticated (401) and public paths: kube's policy sees no user either
        stage = "Panic" if request.get("panicked") else "ResponseComplete"
        if ctx.level == "None" or stage in ctx.omit:
            return
        event = self._event(request, ctx, stage)
        level, attrs = ctx.level, ctx.attrs
        # The response is decoded only when the event shows it, or names what a create made (as kube fills
        # objectRef.name from the object): a list's body can be megabytes.
        wanted = level == "RequestResponse" or (attrs.verb == "create" and not attrs.name)
        response_body = _body(response.body if wanted and isinstance(response, web.Response)
                              and isinstance(response.body, bytes) else None,
                              response.content_type if isinstance(response, web.Response) else "")
        if "objectRef" in event and not attrs.name and attrs.verb == "create" and isinstance(response_body, dict):
            name = (response_body.get("metadata") or {}).get("name", "")
            if name:
                event["objectRef"]["name"] = name
        event["responseStatus"] = {"metadata": {}, "code": code}
        if stage == "Panic":  # upstream's words, without the error itself (it is in the server log)
            event["responseStatus"] |= {"status": "Failure", "reason": "InternalError",
                                        "message": "APIServer panic'd: an internal error occurred"}
        if level in ("Request", "RequestResponse") and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                body = _body(await request.read(), request.headers.get("Content-Type", ""))  # aiohttp kept it
            except Exception:  # noqa: BLE001 - a body too large or cut short: the event goes without it
                body = None
            if body is not None:
                event["requestObject"] = body
        if level == "RequestResponse" and response_body is not None:
            event["responseObject"] = response_body
        annotations = request.get("audit_annotations")
        if annotations:
            event["annotations"] = dict(annotations)
        self._write(event)


@dataclass
class AuditConfig:
    """--audit-log-path and friends, as kube-apiserver's flags."""

    log_path: Path
    policy: Policy
    max_size_mb: int = 100
    max_backups: int = 10

    def open(self) -> AuditLog:
        return AuditLog(self.policy, open_log(self.log_path, self.max_size_mb, self.max_backups))
