"""What the API server and the node agents agree on about the agent's HTTPS endpoint (the kubelet's):
its default port, the remote-command WebSocket protocols, and where a Node says its endpoint is."""

from __future__ import annotations

from kfab.objects.errors import APIError

KUBELET_PORT = 10250
REMOTE_COMMAND_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def kubelet_endpoint(node: dict | None, node_name: str) -> tuple[str, int]:
    """(InternalIP, kubelet port) from the Node's status; APIError 503 when the node has none."""
    status = (node or {}).get("status") or {}
    address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or KUBELET_PORT
    if not address:
        raise APIError(503, "ServiceUnavailable", f'node "{node_name}" has no InternalIP address')
    return address, int(port)
