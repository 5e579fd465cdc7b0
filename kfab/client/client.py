"""A small async client of the Kubernetes API over aiohttp: objects are plain dicts, kinds are ResourceTypes.

Why aiohttp directly rather than kubernetes-asyncio: controllers handle thousands of objects as dicts (the
typed models of the generated clients cost a conversion per object and drop unknown fields), they need the
raw watch stream (BOOKMARK events, 410 Expired as a Status) and exact control over connection pools. aiohttp
is already a pinned dependency of the API server, so this adds none.
"""

from __future__ import annotations

import asyncio
import socket
from typing import AsyncIterator
from urllib.parse import quote

import aiohttp

from kfab.client.kubeconfig import ClientConfig, load_kubeconfig
from kfab.objects import jsonwire
from kfab.objects.registry import REGISTRY, ResourceType
from kfab.objects.meta import meta_of

# A server that vanished (its host died, or the API's virtual IP moved to another host) must not hold a request or
# a watch for minutes (a watch reads for up to timeoutSeconds + 30 s): data unacknowledged for DEAD_PEER_TIMEOUT_MS
# aborts the connection (TCP_USER_TIMEOUT), and an idle connection is probed after KEEPALIVE_IDLE_S — as
# client-go's HTTP/2 health check — so the caller retries on a new connection, to whoever holds the address now.
DEAD_PEER_TIMEOUT_MS = 10_000
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 10, 5, 3


def _api_socket(addr_info) -> socket.socket:
    """aiohttp's socket_factory: its default socket, with dead-peer detection."""
    sock = socket.socket(family=addr_info[0], type=addr_info[1], proto=addr_info[2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                          ("TCP_KEEPCNT", KEEPALIVE_PROBES), ("TCP_USER_TIMEOUT", DEAD_PEER_TIMEOUT_MS)):
        if hasattr(socket, option):  # Linux; elsewhere the system's keepalive defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class APIStatusError(Exception):
    """The API answered with a failure Status."""

    def __init__(self, code: int, reason: str, message: str, status: dict | None = None):
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message, self.status = code, reason, message, status or {}

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"


class WatchExpired(Exception):
    """The resourceVersion a watch asked for is gone (410): list again."""


def rt_of(kind: str, api_version: str = "v1") -> ResourceType:
    rt = REGISTRY.by_kind(api_version, kind)
    if rt is None:
        raise ValueError(f"unknown kind {api_version}/{kind}")
    return rt


class Client:
    """One connection pool to one API server. `async with Client.from_kubeconfig(path) as c: ...`"""

    def __init__(self, config: ClientConfig, user_agent: str = "kfab", pool_size: int = 64,
                 request_timeout: float = 60.0):
        self.config = config
        self.user_agent = user_agent
        self.pool_size = pool_size
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path, user_agent: str = "kfab", pool_size: int = 64,
                        request_timeout: float = 60.0) -> "Client":
        return cls(load_kubeconfig(path), user_agent, pool_size, request_timeout)

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        headers = dict(self.config.headers, **{"User-Agent": self.user_agent, "Accept": "application/json"})
        connector = aiohttp.TCPConnector(limit=limit, ssl=self.config.ssl_context, socket_factory=_api_socket)
        return aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._new_session(self.pool_size)
        return self._session

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        # Watches hold their connection for minutes: a pool of their own, unbounded, so they never starve
        # ordinary requests.
        if self._watch_session is None:
            self._watch_session = self._new_session(0)
        return self._watch_session

    async def close(self) -> None:
        for s in (self._session, self._watch_session):
            if s is not None:
                await s.close()
        self._session = self._watch_session = None

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- paths --------------------------------------------------------------------------------------

    def path(self, rt: ResourceType, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        if rt.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{rt.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    async def request(self, method: str, path: str, *, params: dict | None = None, body: object = None,
                      content_type: str = "application/json", timeout: float | None = None) -> dict:
        timeout = self.request_timeout if timeout is None else timeout
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else jsonwire.dumps(body)
            headers["Content-Type"] = content_type
        async with self.session.request(method, self.config.server + path, params=params, data=data,
                                        headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise _status_error(resp.status, raw)
            return jsonwire.loads(raw) if raw else {}

    # --- verbs -----------------------------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str, subresource: str | None = None) -> dict:
        return await self.request("GET", self.path(rt, namespace, name, subresource))

    async def list(self, rt: ResourceType, namespace: str | None = None, label_selector: str | None = None,
                   field_selector: str | None = None, page_size: int = 500) -> dict:
        """The whole collection (following `continue`), as one List with the collection's resourceVersion."""
        params = {"limit": str(page_size)}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        items: list[dict] = []
        while True:
            page = await self.request("GET", self.path(rt, namespace), params=params)
            items.extend(page.get("items") or [])
            cont = meta_of(page).get("continue")
            if not cont:
                page["items"] = items
                return page
            params["continue"] = cont

    async def create(self, rt: ResourceType, obj: dict, namespace: str | None = None) -> dict:
        namespace = namespace or meta_of(obj).get("namespace")
        return await self.request("POST", self.path(rt, namespace), body=_typed(rt, obj))

    async def update(self, rt: ResourceType, obj: dict, subresource: str | None = None) -> dict:
        """PUT; obj carries metadata.resourceVersion, so a stale write fails with 409 Conflict."""
        meta = obj["metadata"]
        return await self.request("PUT", self.path(rt, meta.get("namespace"), meta["name"], subresource),
                                  body=_typed(rt, obj))

    async def update_status(self, rt: ResourceType, obj: dict) -> dict:
        return await self.update(rt, obj, "status")

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: object,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None) -> dict:
        params = {"fieldManager": field_manager} if field_manager else None
        return await self.request("PATCH", self.path(rt, namespace, name, subresource), params=params,
                                  body=patch, content_type=PATCH_TYPES.get(patch_type, patch_type))

    async def delete(self, rt: ResourceType, namespace: str | None, name: str, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     uid: str | None = None, resource_version: str | None = None) -> dict:
        options: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            options["preconditions"] = pre
        return await self.request("DELETE", self.path(rt, namespace, name), body=options)

    async def delete_collection(self, rt: ResourceType, namespace: str | None, *, label_selector: str | None = None,
                                propagation_policy: str | None = None) -> dict:
        params = {"labelSelector": label_selector} if label_selector else None
        options: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", self.path(rt, namespace), params=params, body=options)

    async def bind(self, namespace: str, pod: str, node: str) -> dict:
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, "namespace": namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return await self.request("POST", self.path(rt_of("Pod"), namespace, pod, "binding"), body=binding)

    async def finalize_namespace(self, namespace: dict, finalizers: list[str]) -> dict:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": namespace["metadata"],
                "spec": dict(namespace.get("spec") or {}, finalizers=finalizers)}
        return await self.request("PUT", self.path(rt_of("Namespace"), None, namespace["metadata"]["name"],
                                                   "finalize"), body=body)

    async def watch(self, rt: ResourceType, namespace: str | None = None, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[tuple[str, dict]]:
        """(type, object) pairs: ADDED/MODIFIED/DELETED/BOOKMARK. Raises WatchExpired on 410."""
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        url = self.config.server + self.path(rt, namespace)
        async with self.watch_session.get(url, params=params,
                                          timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
                                          ) as resp:
            if resp.status == 410:
                raise WatchExpired(await resp.text())
            if resp.status >= 400:
                raise _status_error(resp.status, await resp.read())
            buffer = b""
            async for chunk in resp.content.iter_any():
                # One split per chunk: a chunk may hold hundreds of events (the server writes what is waiting at once).
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = jsonwire.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired(obj.get("message", "resource version expired"))
                        raise APIStatusError(int(obj.get("code") or 500), obj.get("reason", ""),
                                             obj.get("message", ""), obj)
                    yield kind, obj


def _typed(rt: ResourceType, obj: dict) -> dict:
    if obj.get("apiVersion") and obj.get("kind"):
        return obj
    return dict(obj, apiVersion=rt.api_version, kind=rt.kind)


def _status_error(code: int, raw: bytes) -> APIStatusError:
    try:
        status = jsonwire.loads(raw)
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    return APIStatusError(code, status.get("reason", ""), status.get("message", raw[:200].decode(errors="replace")),
                          status)


async def retry_on_conflict(step, attempts: int = 5):
    """Run `step()` (read-modify-write) again when it hits 409 Conflict, as client-go's RetryOnConflict."""
    for attempt in range(attempts):
        try:
            return await step()
        except APIStatusError as e:
            if not e.conflict or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
