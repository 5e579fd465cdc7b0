"""Records kept current from the API: informers on Services and EndpointSlices; the index is rebuilt on the
first query after a change (a rollout's burst of slice updates costs one rebuild, and queries never wait)."""

from __future__ import annotations

import asyncio

from kfab.client import Client, rt_of
from kfab.machinery.informer import Informer
from kfab.dns.records import Records


class WatchedRecords:
    def __init__(self, client: Client, domain: str = "cluster.local"):
        self.domain = domain
        self.services = Informer(client, rt_of("Service"))
        self.slices = Informer(client, rt_of("EndpointSlice", "discovery.k8s.io/v1"))
        self._records = Records.build([], [], domain)
        self._dirty = True
        for informer in (self.services, self.slices):
            informer.add_handlers(self._changed, self._changed, self._changed)

    def _changed(self, *_objs) -> None:
        self._dirty = True

    def __call__(self) -> Records:
        if self._dirty:
            self._dirty = False
            self._records = Records.build(self.services.list(), self.slices.list(), self.domain)
        return self._records

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.services.run(), name="dns-services"),
                 asyncio.create_task(self.slices.run(), name="dns-endpointslices")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def synced(self) -> None:
        await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
