"""pods/portforward and pods/attach: `kubectl port-forward` and `kubectl attach`, relayed to the node agent
running the pod (pods/exec is in subresources.py; attach speaks its protocol).

kubectl 1.30+ speaks SPDY/3.1 tunnelled in a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`) and falls
back to a plain SPDY upgrade only when the WebSocket upgrade fails. The API server relays the WebSocket
messages to the agent's /portForward endpoint (kfab.node.portforward), which speaks SPDY; like kube-apiserver
it never looks inside.
"""

from __future__ import annotations

from aiohttp import web

from kfab.objects.errors import APIError, bad_request
from kfab.objects.meta import spec_of, status_of

PROTOCOLS = ("SPDY/3.1+portforward.k8s.io",)


async def port_forward(pod: dict, request: web.Request, node_streams) -> web.StreamResponse:
    """`node_streams`: kfab.api.kubelet_proxy.NodeExecProxy (the API server's WebSocket relay to node agents)."""
    name = pod["metadata"]["name"]
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise APIError(400, "BadRequest", "only port-forward tunnelled over WebSocket (SPDY/3.1+portforward.k8s.io) "
                       "is supported")
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if PROTOCOLS[0] not in offered:
        raise bad_request(f"port-forward needs the WebSocket subprotocol {PROTOCOLS[0]}, got {offered}")
    if not spec_of(pod).get("nodeName") or status_of(pod).get("phase") != "Running":
        raise bad_request(f"unable to forward port because pod is not running. Current status="
                          f"{(pod.get('status') or {}).get('phase', 'Pending')}")
    if node_streams is None:
        raise APIError(503, "ServiceUnavailable", "this API server has no connection to node agents configured")
    meta = pod["metadata"]
    return await node_streams.relay(pod, request, f"/portForward/{meta['namespace']}/{name}", [], PROTOCOLS,
                                    "port-forward")


async def attach(pod: dict, request: web.Request, node_streams) -> web.StreamResponse:
    """pods/attach: the WebSocket remote-command protocol of exec, on the container's own process."""
    if not spec_of(pod).get("nodeName") or status_of(pod).get("phase") != "Running":
        raise bad_request(f'pod {pod["metadata"]["name"]} is not running: cannot attach to a container in it')
    if node_streams is None:
        raise APIError(503, "ServiceUnavailable", "this API server has no connection to node agents configured")
    return await node_streams(pod, request, "attach")
