"""Max-in-flight: kube-apiserver's --max-requests-inflight / --max-mutating-requests-inflight, the simplest form
of its API Priority and Fairness. Past the limit a request is refused at once with 429 and Retry-After (clients
such as client-go and kubectl wait and retry); long-running requests (watches, logs, exec, port-forward) are
not counted, as upstream's LongRunningRequestCheck excludes them.

One client may hold at most half of each limit, so a single runaway client (a loop of kubectl, a buggy
controller) is refused before it starves everyone else — the fairness part of APF in one rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from kfab.objects.errors import APIError

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
LONG_RUNNING_SUBRESOURCES = ("/log", "/exec", "/attach", "/portforward", "/proxy")
RETRY_AFTER_SECONDS = 1


def too_many_requests() -> APIError:
    return APIError(429, "TooManyRequests", "Too many requests, please try again later.",
                    retry_after_seconds=RETRY_AFTER_SECONDS)


def long_running(request: web.Request) -> bool:
    query = request.query
    return (query.get("watch", "").lower() in ("true", "1") or request.path.endswith(LONG_RUNNING_SUBRESOURCES)
            or "/watch/" in request.path)


@dataclass
class InFlightLimits:
    readonly: int = 400  # kube-apiserver's defaults
    mutating: int = 200


class InFlight:
    """Counts requests in flight per kind (read-only, mutating) and per client; 0 disables a limit."""

    def __init__(self, limits: InFlightLimits):
        self.limits = limits
        self.total: Counter = Counter()
        self.by_client: Counter = Counter()

    def middleware(self):
        @web.middleware
        async def max_in_flight(request: web.Request, handler):
            if long_running(request):
                return await handler(request)
            kind = "mutating" if request.method in MUTATING else "readonly"
            limit = getattr(self.limits, kind)
            if not limit:
                return await handler(request)
            user = request.get("user")
            client = (kind, getattr(user, "name", None) or request.remote or "")
            if self.total[kind] >= limit or self.by_client[client] >= max(1, limit // 2):
                raise too_many_requests()
            self.total[kind] += 1
            self.by_client[client] += 1
            try:
                return await handler(request)
            finally:
                self.total[kind] -= 1
                self.by_client[client] -= 1
                if not self.by_client[client]:
                    del self.by_client[client]
        return max_in_flight
