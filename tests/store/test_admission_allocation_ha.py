"""Two API servers over one etcd cluster never hand out the same ClusterIP or NodePort."""

import asyncio
import json

import pytest

from kfab.objects.errors import APIError
from kfab.api.admission import AdmissionChain
from kfab.api.allocator import IP_PREFIX, PORT_PREFIX
from kfab.objects.registry import REGISTRY
from kfab.store import KeyExists, open_store
from tests.unit.admission_helpers import create_request

NODE_PORTS = (31000, 31079)


def service(name):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}}


async def create(chain, obj):
    async with chain.admitted(create_request(obj)) as (stored, _):
        return stored


def test_two_api_servers_on_etcd_share_the_ranges(etcd_cluster):
    async def main():
        # Two store clients, as two kfab apiserver processes have, each with its own admission chain.
        first, second = await open_store(etcd_cluster.url), await open_store(etcd_cluster.url)
        try:
            try:
                await first.create(REGISTRY.by_kind("v1", "Namespace").store_key(None, "default"),
                                   json.dumps({"metadata": {"name": "default"}}).encode())
            except KeyExists:
                pass
            chains = [AdmissionChain(first, node_ports=NODE_PORTS), AdmissionChain(second, node_ports=NODE_PORTS)]
            created = await asyncio.gather(*(create(chains[i % 2], service(f"ha-{i}")) for i in range(80)))
            with pytest.raises(APIError) as full:
                await create(chains[1], service("ha-full"))
            for svc in created:  # leave the shared cluster as we found it
                await chains[0].after_delete(REGISTRY.by_kind("v1", "Service"), svc)
            left = (await first.list(IP_PREFIX))[0] + (await first.list(PORT_PREFIX))[0]
            return created, full.value, left
        finally:
            await first.close()
            await second.close()

    created, full, left = asyncio.run(main())
    assert sorted(s["spec"]["ports"][0]["nodePort"] for s in created) == list(range(31000, 31080))
    assert len({s["spec"]["clusterIP"] for s in created}) == 80
    assert full.code == 500 and "range is full" in full.message
    assert left == []
