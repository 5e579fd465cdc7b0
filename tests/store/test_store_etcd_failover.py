"""etcd backend over a real 3-member cluster: one member down at a time changes nothing for the user."""

import asyncio

import pytest

from kfab.store import StoreUnavailable, open_store
from tests.etcd_cluster import EtcdCluster


@pytest.fixture
def cluster():
    # Its own cluster: these tests stop members, which must not disturb other tests.
    with EtcdCluster() as c:
        yield c


async def take(events, n: int, deadline: float = 30.0) -> list:
    async def collect():
        return [await anext(events) for _ in range(n)]

    return await asyncio.wait_for(collect(), deadline)


def test_writes_and_watches_continue_with_any_one_member_down(cluster):
    async def body():
        store = await open_store(cluster.url)
        start = await store.current_revision()
        events = store.watch("/registry/configmaps/", start)
        written = []
        try:
            # Stop each member in turn, so whichever member the watch stream uses is lost at some point.
            for down in range(3):
                cluster.stop_member(down)
                for i in range(5):
                    written.append(await store.create(f"/registry/configmaps/default/m{down}-{i}", b"v"))
                got = await take(events, 5)
                assert [e.kv for e in got] == written[-5:]
                cluster.start_member(down)
        finally:
            await events.aclose()
            await store.close()
        return written

    written = asyncio.run(body())

    async def caught_up(i):
        # Read through one member alone: a restarted member has every write made while it was down.
        store = await open_store(cluster.member_url(i))
        try:
            items, _ = await store.list("/registry/configmaps/")
            return [kv.key for kv in items]
        finally:
            await store.close()

    keys = sorted(kv.key for kv in written)
    for i in range(3):
        assert asyncio.run(caught_up(i)) == keys


def test_no_quorum_is_a_clear_store_unavailable_error_naming_the_endpoints(cluster):
    async def body():
        store = await open_store(cluster.url)
        try:
            await store.create("/registry/a", b"1")
            cluster.stop_member(1)
            cluster.stop_member(2)
            with pytest.raises(StoreUnavailable) as err:
                await store.create("/registry/b", b"1")
            assert cluster.endpoints[0] in str(err.value)
            cluster.start_member(1)
            # Quorum is back: the same store object serves again.
            assert (await store.get("/registry/a")).value == b"1"
        finally:
            await store.close()

    asyncio.run(body())


def test_unreachable_etcd_is_a_clear_error_naming_the_endpoints():
    from tests.etcd_cluster import free_port

    url = f"etcd://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StoreUnavailable) as err:
        asyncio.run(open_store(url))
    assert url in str(err.value) and "no member answered" in str(err.value)
