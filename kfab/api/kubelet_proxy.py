"""The API server's side of the node agents' HTTPS endpoint (kube-apiserver's kubelet client): `pods/log`
relays the agent's /containerLogs stream, `pods/exec`, `pods/attach` and `pods/portforward` relay WebSocket
messages to the agent, message for message, never reading the protocol inside.

The agent's side (what serves those paths) is kfab.node.logs and kfab.node.exec. The API server reads the
Node straight from its store and presents a cluster-CA client certificate (CN kube-apiserver-kubelet-client,
O system:masters); the agent's serving certificate is verified with the cluster CA.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from kfab.objects.errors import APIError, bad_request
from kfab.objects.kubelet import REMOTE_COMMAND_PROTOCOLS, kubelet_endpoint
from kfab.objects.registry import REGISTRY
from kfab.pki import issue_client_cert


class NodeExecProxy:
    """API server side: relay kubectl's WebSocket to the agent's /exec endpoint, message for message."""

    def __init__(self, node_of: Callable, ssl_context: ssl.SSLContext):
        self.node_of = node_of  # async (node name) -> the Node
        self.ssl_context = ssl_context

    async def __call__(self, pod: dict, request: web.Request, action: str = "exec") -> web.StreamResponse:
        """`action`: exec, or attach (the same protocol on the container's own process)."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # kubectl falls back to SPDY only when the WebSocket upgrade is refused with an upgrade error.
            raise APIError(400, "BadRequest", "only the WebSocket remote-command protocol "
                           "(v5.channel.k8s.io, v4.channel.k8s.io) is supported")
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.query.get("container") or (containers[0] if containers else "")
        if container not in containers:
            raise bad_request(f'container {container} is not valid for pod {pod["metadata"]["name"]}')
        meta = pod["metadata"]
        params = [(k, v) for k, v in request.query.items() if k != "container"]
        return await self.relay(pod, request, f"/{action}/{meta['namespace']}/{meta['name']}/{container}", params,
                                REMOTE_COMMAND_PROTOCOLS, action)

    async def relay(self, pod: dict, request: web.Request, path: str, params: list, protocols: tuple[str, ...],
                    what: str) -> web.StreamResponse:
        """Open the agent's WebSocket at `path` on the pod's node, then copy messages both ways (exec,
        port-forward): the API server never reads the protocol inside."""
        address, port = kubelet_endpoint(await self.node_of(pod["spec"]["nodeName"]), pod["spec"]["nodeName"])
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}{path}"
        session = aiohttp.ClientSession()
        try:
            upstream = await session.ws_connect(url, params=params, ssl=self.ssl_context, protocols=protocols,
                                                max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            await session.close()
            raise bad_request(f"{what} on node {pod['spec']['nodeName']}: {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            await session.close()
            raise APIError(500, "InternalError", f"error dialing node {pod['spec']['nodeName']}: {e}") from None
        downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else protocols,
                                           max_msg_size=0)
        await downstream.prepare(request)

        async def copy(src, dst) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        try:
            up = asyncio.create_task(copy(downstream, upstream))
            await copy(upstream, downstream)
            up.cancel()
        finally:
            await upstream.close()
            await session.close()
        return downstream


class NodeLogProxy:
    """The API server's side: `pod_logs(pod, query)` for kfab.api.subresources, relaying the agent's stream.

    `node_of(name)` returns the Node object (read from the API server's store); `ssl_context` presents the
    API server's kubelet-client certificate and verifies the agent's serving certificate with the cluster CA.
    """

    def __init__(self, node_of: Callable, ssl_context: ssl.SSLContext):
        self.node_of = node_of
        self.ssl_context = ssl_context

    async def __call__(self, pod: dict, query) -> AsyncIterator[bytes]:
        address, port = kubelet_endpoint(await self.node_of(pod["spec"]["nodeName"]), pod["spec"]["nodeName"])
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        every = containers + [c["name"] for c in pod["spec"].get("initContainers") or []]
        container = query.get("container")
        if not container:
            if len(containers) != 1:
                raise bad_request(f'a container name must be specified for pod {pod["metadata"]["name"]}, '
                                  f'choose one of: {containers}')
            container = containers[0]
        if container not in every:
            raise bad_request(f'container {container} is not valid for pod {pod["metadata"]["name"]}')
        params = {k: query[k] for k in ("follow", "tailLines", "previous") if k in query}
        meta = pod["metadata"]
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}/containerLogs/{meta['namespace']}/{meta['name']}/{container}"
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        try:
            resp = await session.get(url, params=params, ssl=self.ssl_context)
        except (aiohttp.ClientError, OSError) as e:
            await session.close()
            raise APIError(500, "InternalError", f'Get "{url}": {e}') from None
        if resp.status >= 400:
            text = await resp.text()
            resp.release()
            await session.close()
            raise bad_request(text.strip())

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            finally:
                resp.release()
                await session.close()
        return relay()


def node_reader(store) -> Callable:
    """Read a Node straight from the store (the API server's own view, no extra authorization)."""
    rt = REGISTRY.by_kind("v1", "Node")

    async def node_of(name: str) -> dict | None:
        kv = await store.get(rt.store_key(None, name))
        return json.loads(kv.value) if kv is not None else None
    return node_of


def kubelet_client_ssl_context(pki) -> ssl.SSLContext:
    """The API server's client side towards node agents: a cluster-CA client cert, agents verified by the CA."""
    cert, key = issue_client_cert(pki, "kube-apiserver-kubelet-client", ["system:masters"])
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    with tempfile.TemporaryDirectory(prefix="kfab-kubelet-client-") as tmp:
        cert_file, key_file = Path(tmp, "c.crt"), Path(tmp, "c.key")
        cert_file.write_bytes(cert)
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
