"""The NetworkPolicy loop of one node: informers on NetworkPolicies, Pods and Namespaces; every change
re-renders table `inet kfab-policy` and applies it with one `nft -f` (atomic: no packet sees half a policy),
debounced as the proxy's table is. Pod, label and namespace changes reach the kernel within DEBOUNCE +
one apply (bench/ingress.py measures it)."""

from __future__ import annotations

import asyncio
import logging
import time

from kfab.client import Client, rt_of
from kfab.machinery.informer import Informer
from kfab.proxy.policy_rules import TABLE, build_policy_rules
from kfab.proxy.proxier import NftError, bridged_traffic_filtered, run_nft

log = logging.getLogger(__name__)

DEBOUNCE = 0.05
RETRY = 2.0


class PolicyEnforcer:
    def __init__(self, client: Client, node_name: str, nft_command: list[str] | None = None):
        self.node_name = node_name
        self.nft_command = nft_command or ["nft"]
        self.policies = Informer(client, rt_of("NetworkPolicy", "networking.k8s.io/v1"))
        self.pods = Informer(client, rt_of("Pod"))
        self.namespaces = Informer(client, rt_of("Namespace"))
        self.applied: str | None = None
        self.applied_at = 0.0
        self._changed = asyncio.Event()

    def render(self) -> str:
        return build_policy_rules(self.policies.list(), self.pods.list(), self.namespaces.list(),
                                  self.node_name).text()

    async def sync(self) -> bool:
        text = self.render()
        if text == self.applied:
            return False
        try:
            await run_nft(self.nft_command, text)
        except BaseException:
            self.applied = None
            raise
        self.applied, self.applied_at = text, time.monotonic()
        log.debug("applied table inet %s (%d bytes)", TABLE, len(text))
        return True

    def _on_change(self, *_objs) -> None:
        self._changed.set()

    async def run(self) -> None:
        if not bridged_traffic_filtered():
            log.warning("net.bridge.bridge-nf-call-iptables is not 1: NetworkPolicies hold between nodes and "
                        "through Services, not between two pods on this node's bridge")
        informers = (self.policies, self.pods, self.namespaces)
        for informer in informers:
            informer.add_handlers(self._on_change, self._on_change, self._on_change)
        tasks = [asyncio.create_task(i.run(), name=i.rt.plural) for i in informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i in informers))
            self._changed.set()
            while True:
                await self._changed.wait()
                await asyncio.sleep(DEBOUNCE)
                self._changed.clear()
                try:
                    await self.sync()
                except (NftError, OSError) as e:
                    log.error("%s; retrying in %.0fs", e, RETRY)
                    await asyncio.sleep(RETRY)
                    self._changed.set()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
