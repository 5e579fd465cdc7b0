"""EventRecorder.close() writes the Events still queued before it stops (bounded): a controller-manager that loses
its Lease stops its controllers at once, and what they just did must still be told."""

from __future__ import annotations

import asyncio

from kfab.machinery import events
from kfab.machinery.events import EventRecorder


class SlowClient:
    """Takes a while per write, as a loaded API server does."""

    def __init__(self, delay: float):
        self.delay, self.created = delay, []

    async def create(self, rt, body, namespace):
        await asyncio.sleep(self.delay)
        self.created.append(body["reason"])
        return body


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}}


def test_close_writes_the_queued_events_first():
    async def scenario():
        client = SlowClient(0.05)
        recorder = EventRecorder(client, "cm-a")
        for i in range(3):
            recorder.record(pod(f"p{i}"), "Normal", f"Reason{i}", "m", "deployment-controller")
        await recorder.close()
        return client.created

    assert asyncio.run(scenario()) == ["Reason0", "Reason1", "Reason2"]


def test_close_gives_up_on_a_server_that_does_not_answer(monkeypatch):
    monkeypatch.setattr(events, "FLUSH_ON_CLOSE", 0.2)

    async def scenario():
        client = SlowClient(60)
        recorder = EventRecorder(client, "cm-a")
        recorder.record(pod("p"), "Normal", "Reason", "m", "deployment-controller")
        await recorder.close()
        return client.created

    assert asyncio.run(scenario()) == []   # had close() waited for the write, it would be there (after 60 s)
