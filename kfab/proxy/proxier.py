"""The proxy's loop: informers on Services and EndpointSlices; every change re-renders the table and
applies it with one `nft -f` (atomic), debounced so a burst of endpoint updates costs one apply.

Rules stay in place when the proxy stops (as kube-proxy's): a restart or upgrade must not drop Service
traffic; `kfab proxy --cleanup` removes the table.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from pathlib import Path

from kfab.client import Client, rt_of
from kfab.machinery.informer import Informer
from kfab.proxy.rules import TABLE, Ruleset, build_ruleset, render_update

log = logging.getLogger(__name__)

DEBOUNCE = 0.05        # seconds of quiet after a change before applying (a rollout changes many slices)
MAX_DELAY = 0.5        # ... but never hold a change back longer than this under a steady stream
RETRY = 2.0
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


class NftError(Exception):
    pass


async def run_nft(nft_command: list[str], ruleset: str) -> None:
    proc = await asyncio.create_subprocess_exec(*nft_command, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(ruleset.encode())
    if proc.returncode != 0:
        raise NftError(f"{shlex.join(nft_command)} -f - exited {proc.returncode}: {(err or out).decode().strip()}")


def bridged_traffic_filtered() -> bool:
    """True where br_netfilter hands bridged packets to netfilter (then same-bridge replies get un-DNATed)."""
    try:
        return BRIDGE_NF.read_text().strip() == "1"
    except OSError:
        return False


class Proxier:
    def __init__(self, client: Client, node_ips: list[str], cluster_cidr: str | None = None,
                 local_pod_cidr: str | None = None, nft_command: list[str] | None = None,
                 node_name: str | None = None):
        self.client = client
        self.node_name = node_name
        self.node_ips = node_ips
        self.cluster_cidr = cluster_cidr
        self.local_pod_cidr = local_pod_cidr
        self.nft_command = nft_command or ["nft"]
        self.services = Informer(client, rt_of("Service"))
        self.slices = Informer(client, rt_of("EndpointSlice", "discovery.k8s.io/v1"))
        self._applied_rs: Ruleset | None = None
        self._applied_text: tuple[Ruleset | None, str | None] = (None, None)
        self.applied_at = 0.0          # monotonic time of the last successful apply (benchmarks read it)
        self.applies = 0
        self._changed = asyncio.Event()
        self._pending_since: float | None = None

    def _on_change(self, *_objs) -> None:
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        self._changed.set()

    @property
    def applied(self) -> str | None:
        """The table as last applied, as full `nft -f` text (for tests and benchmarks; made on demand)."""
        if self._applied_text[0] is not self._applied_rs:
            rs = self._applied_rs
            self._applied_text = (rs, rs.text() if rs is not None else None)
        return self._applied_text[1]

    def build(self) -> Ruleset:
        return build_ruleset(self.services.list(), self.slices.list(), self.node_ips,
                             cluster_cidr=self.cluster_cidr, local_pod_cidr=self.local_pod_cidr,
                             node_name=self.node_name)

    async def sync(self) -> bool:
        """Apply what changed since the last apply (the whole table the first time, after an error, or when a
        base chain changed); True when nft ran."""
        new = self.build()
        update = render_update(self._applied_rs, new) if self._applied_rs is not None else None
        if update == "":
            return False
        text = new.text() if update is None else update
        started = time.monotonic()
        try:
            await run_nft(self.nft_command, text)
        except BaseException:
            self._applied_rs = None          # the kernel's table is unknown now: rewrite it all next time
            raise
        self._applied_rs, self.applied_at = new, time.monotonic()
        self.applies += 1
        log.debug("applied %s of table ip %s (%d bytes) in %.1f ms", "all" if update is None else "changes",
                  TABLE, len(text), (self.applied_at - started) * 1e3)
        return True

    async def run(self) -> None:
        for informer in (self.services, self.slices):
            informer.add_handlers(self._on_change, self._on_change, self._on_change)
        tasks = [asyncio.create_task(self.services.run(), name="services"),
                 asyncio.create_task(self.slices.run(), name="endpointslices")]
        try:
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
            self._on_change()
            while True:
                await self._changed.wait()
                await self._debounce()
                self._changed.clear()
                self._pending_since = None
                try:
                    await self.sync()
                except (NftError, OSError) as e:
                    log.error("%s; retrying in %.0fs", e, RETRY)
                    await asyncio.sleep(RETRY)
                    self._on_change()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _debounce(self) -> None:
        """Wait for DEBOUNCE seconds without a new change, at most MAX_DELAY after the first one."""
        while True:
            self._changed.clear()
            remaining = MAX_DELAY - (time.monotonic() - (self._pending_since or time.monotonic()))
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), min(DEBOUNCE, remaining))
            except asyncio.TimeoutError:
                return
