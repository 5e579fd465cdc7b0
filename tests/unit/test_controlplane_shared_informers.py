"""`kfab server` runs the controller-manager and the scheduler on one set of informers (one cache of each kind
per process, as client-go's SharedInformerFactory), each component failing on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kfab.controlplane import server
from kfab.machinery.informer import InformerFactory


class FakeClient:
    def __init__(self):
        self.closed = False

    @classmethod
    def from_kubeconfig(cls, path, **_):
        return cls()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.closed = True


def test_in_process_components_share_one_informer_factory_stopped_after_the_last(monkeypatch):
    stopped: list[str] = []

    class RecordingFactory(InformerFactory):
        async def stop(self) -> None:
            stopped.append("informers")
            await super().stop()

    monkeypatch.setattr(server, "Client", FakeClient)
    monkeypatch.setattr(server, "InformerFactory", RecordingFactory)
    seen: dict[str, InformerFactory] = {}

    async def failing(kubeconfig: Path, informers: InformerFactory) -> None:
        seen["controller-manager"] = informers
        raise RuntimeError("a controller failed to start")

    async def lasting(kubeconfig: Path, informers: InformerFactory) -> None:
        seen["scheduler"] = informers
        await asyncio.sleep(0.05)  # still running after the other failed
        stopped.append("scheduler")

    component = server._sharing_informers({"controller-manager": failing, "scheduler": lasting})
    asyncio.run(component(Path("admin.kubeconfig")))
    assert seen["controller-manager"] is seen["scheduler"]
    assert isinstance(seen["scheduler"], RecordingFactory)
    assert stopped == ["scheduler", "informers"]  # the other's failure stopped neither it nor the informers


@pytest.mark.parametrize("run", ["kfab.controllers.manager.run_manager", "kfab.scheduler.process.run"])
def test_a_leader_elected_component_keeps_informers_of_its_own(run):
    import importlib

    from kfab.machinery.leader import LeaderElectionConfig

    module, name = run.rsplit(".", 1)
    function = getattr(importlib.import_module(module), name)
    election = LeaderElectionConfig.__new__(LeaderElectionConfig)
    with pytest.raises(ValueError, match="informers of its own"):
        asyncio.run(function(Path("admin.kubeconfig"), election, informers=object()))


def test_waiting_for_caches_is_not_held_up_by_informers_nobody_started():
    from kfab.client import rt_of

    async def main() -> None:
        informers = InformerFactory(client=None)
        pods = informers.informer(rt_of("Pod"))

        async def listed_then_watching() -> None:
            pods.synced.set()
            await asyncio.Event().wait()

        pods.run = listed_then_watching
        informers.start()
        informers.informer(rt_of("Node"))  # asked for by a component that failed before starting it
        try:
            await asyncio.wait_for(informers.wait_synced(), 5)
        finally:
            await informers.stop()

    asyncio.run(main())
