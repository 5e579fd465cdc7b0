"""WatchHub over a real 3-member etcd cluster: losing the member its watch uses loses and repeats nothing."""

import asyncio

import pytest

from kfab.api.watchhub import WatchHub
from kfab.store import open_store
from tests.etcd_cluster import EtcdCluster


@pytest.fixture
def cluster():
    with EtcdCluster() as c:  # its own cluster: this test stops members
        yield c


def test_subscribers_see_every_event_once_while_members_go_down(cluster):
    async def main():
        store = await open_store(cluster.url)
        hub = WatchHub(store)
        await hub.start()
        start = await store.current_revision()
        seen = [[] for _ in range(50)]

        async def reader(i):
            async with hub.subscribe("/registry/configmaps/", start) as sub:
                async for event in sub:
                    seen[i].append((event.type, event.kv.key, event.kv.mod_revision))

        readers = [asyncio.create_task(reader(i)) for i in range(50)]
        written = []
        try:
            for down in range(3):  # whichever member the hub's watch uses goes down at some point
                cluster.stop_member(down)  # SIGTERM: a leader hands over, writes keep working
                for j in range(5):
                    kv = await store.create(f"/registry/configmaps/default/m{down}-{j}", b"{}")
                    written.append(("PUT", kv.key, kv.mod_revision))
                loop_deadline = asyncio.get_running_loop().time() + 30
                while any(len(s) < len(written) for s in seen):
                    assert asyncio.get_running_loop().time() < loop_deadline, "watchers did not catch up"
                    await asyncio.sleep(0.02)
                cluster.start_member(down)
            assert all(s == written for s in seen)
        finally:
            for r in readers:
                r.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await hub.close()
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 120))
