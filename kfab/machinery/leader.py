"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection package.

Candidates race to write themselves as `spec.holderIdentity`; the API's optimistic concurrency (409 on a
stale resourceVersion) makes exactly one win. The holder renews `spec.renewTime` every `retry_period`; when
it cannot renew within `renew_deadline` it steps down (its work is cancelled). Others take over once they
have seen the same lease record unchanged for `lease_duration` - measured on their own clock since they
last saw it change, never by comparing timestamps across hosts (clock skew).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import spec_of

log = logging.getLogger(__name__)

LEASE = rt_of("Lease", "coordination.k8s.io/v1")


def micro_time() -> str:
    """metav1.MicroTime as the API writes it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class LeaderElectionConfig:
    name: str = "kfab-controller-manager"
    namespace: str = "kube-system"
    identity: str = ""
    lease_duration: float = 15.0  # kube-controller-manager's defaults: 15 s / 10 s / 2 s
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            self.identity = default_identity()
        if not (self.lease_duration > self.renew_deadline > self.retry_period > 0):
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0")


class LeaderElector:
    def __init__(self, client: Client, config: LeaderElectionConfig):
        self.client, self.config = client, config
        self._observed: dict | None = None      # the lease spec last seen
        self._observed_at = 0.0                 # monotonic time it was last seen changing
        self.is_leader = False

    def _spec(self, holder: str, transitions: int, acquire_time: str | None) -> dict:
        now = micro_time()
        return {"holderIdentity": holder, "leaseDurationSeconds": max(1, int(round(self.config.lease_duration))),
                "acquireTime": acquire_time or now, "renewTime": now, "leaseTransitions": transitions}

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the lease afterwards."""
        cfg = self.config
        try:
            lease = await self.client.get(LEASE, cfg.namespace, cfg.name)
        except APIStatusError as e:
            if not e.not_found:
                raise
            body = {"metadata": {"name": cfg.name, "namespace": cfg.namespace},
                    "spec": self._spec(cfg.identity, 0, None)}
            try:
                await self.client.create(LEASE, body, cfg.namespace)
            except APIStatusError as e2:
                if e2.already_exists:
                    return False
                raise
            self._observe(body["spec"])
            return True
        spec = spec_of(lease)
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and time.monotonic() < self._observed_at + duration:
            return False  # somebody else holds a lease that has not expired by our clock
        if holder == cfg.identity:
            new_spec = self._spec(holder, int(spec.get("leaseTransitions") or 0), spec.get("acquireTime"))
        else:
            new_spec = self._spec(cfg.identity, int(spec.get("leaseTransitions") or 0) + 1, None)
        lease["spec"] = new_spec
        try:
            await self.client.update(LEASE, lease)  # carries resourceVersion: 409 if somebody wrote first
        except APIStatusError as e:
            if e.conflict:
                return False
            raise
        self._observe(new_spec)
        return True

    def _observe(self, spec: dict) -> None:
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = time.monotonic()

    async def _attempt(self) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), self.config.retry_period * 2)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the API being briefly unreachable is a failed attempt
            log.info("lease %s/%s: attempt failed: %s", self.config.namespace, self.config.name, e)
            return False

    async def acquire(self) -> None:
        while not await self._attempt():
            await asyncio.sleep(self.config.retry_period)
        self.is_leader = True
        log.warning("%s became the leader (lease %s/%s)", self.config.identity, self.config.namespace,
                    self.config.name)

    async def keep_renewing(self) -> None:
        """Returns when leadership is lost (no successful renewal within renew_deadline)."""
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self.config.retry_period)
            if await self._attempt():
                last_renew = time.monotonic()
            elif time.monotonic() - last_renew > self.config.renew_deadline:
                self.is_leader = False
                log.warning("%s lost the lease %s/%s", self.config.identity, self.config.namespace, self.config.name)
                return

    async def release(self) -> None:
        """Step down on a clean stop so the next candidate need not wait for expiry."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.client.get(LEASE, self.config.namespace, self.config.name)
            if spec_of(lease).get("holderIdentity") == self.config.identity:
                lease["spec"] = dict(lease["spec"], holderIdentity="", leaseDurationSeconds=1)
                await self.client.update(LEASE, lease)
        except Exception as e:  # noqa: BLE001 - the lease will expire anyway
            log.info("releasing the lease failed: %s", e)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Acquire, run `lead()` while leading; cancel it and return when leadership is lost."""
        await self.acquire()
        work = asyncio.create_task(lead(), name="leading")
        renew = asyncio.create_task(self.keep_renewing(), name="lease-renewal")
        try:
            done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()
        finally:
            for task in (work, renew):
                task.cancel()
            await asyncio.gather(work, renew, return_exceptions=True)
            await self.release()
