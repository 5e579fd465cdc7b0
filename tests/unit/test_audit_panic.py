"""The audit log's Panic stage: a handler failing with an unexpected error is answered 500 by the API server's
status_errors middleware and audited as stage Panic in upstream's words (without the error's text), over a
real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from kfab.api.app import status_errors
from kfab.api.audit import AuditLog, Policy, open_log
from kfab.api.auth import UserInfo


def test_a_failing_handler_is_audited_as_panic(tmp_path):
    log = AuditLog(Policy.everything_at("Metadata"), open_log(tmp_path / "audit.log"))

    @web.middleware
    async def authenticated(request, handler):  # what the API server's auth middleware does for audit
        user = UserInfo("alice", ("system:authenticated",))
        request["user"] = user
        log.authenticated(request, user)
        return await handler(request)

    async def broken(request):
        raise KeyError("secret-internal-detail")

    async def fine(request):
        return web.json_response({"kind": "Status", "code": 200})

    async def run():
        app = web.Application(middlewares=[log.middleware(), status_errors, authenticated])
        app.on_response_prepare.append(log.on_response_prepare)
        app.router.add_get("/api/v1/namespaces/default/configmaps/x", broken)
        app.router.add_get("/api/v1/namespaces/default/configmaps/y", fine)
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/api/v1/namespaces/default/configmaps/x")) as resp:
                assert resp.status == 500 and resp.headers["Audit-Id"]
                failed_id = resp.headers["Audit-Id"]
            async with session.get(server.make_url("/api/v1/namespaces/default/configmaps/y")) as resp:
                assert resp.status == 200
        return failed_id

    failed_id = asyncio.run(run())
    events = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(e["objectRef"]["name"], e["stage"]) for e in events] == [("x", "Panic"), ("y", "ResponseComplete")]
    panic = events[0]
    assert panic["auditID"] == failed_id
    assert panic["responseStatus"] == {"metadata": {}, "code": 500, "status": "Failure", "reason": "InternalError",
                                       "message": "APIServer panic'd: an internal error occurred"}
    assert "secret-internal-detail" not in (tmp_path / "audit.log").read_text()
