"""The node's pod network as the pod workers see it: a Podman bridge network on the node's podCIDR.

This is the hook the cross-node pod network plugs into: `ensure()` runs once the podCIDR is known (routes to
other nodes' podCIDRs and the no-SNAT rule belong next to it), `sandbox_options()` are extra Podman pod
options for every pod sandbox (cluster DNS: dns_server, dns_search, dns_option).
"""

from __future__ import annotations

import ipaddress

from kfab.node.runtime import PodmanRuntime


class PodNetwork:
    def __init__(self, runtime: PodmanRuntime, name: str = "podnet"):
        self.runtime = runtime
        self.name = name
        self.pod_cidr: str | None = None

    async def ensure(self, pod_cidr: str) -> None:
        net = ipaddress.ip_network(pod_cidr)
        await self.runtime.ensure_network(self.name, str(net), str(net.network_address + 1))
        self.pod_cidr = pod_cidr

    def sandbox_options(self) -> dict:
        return {}
