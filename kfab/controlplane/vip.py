"""`kfab vip`: the API's virtual IP, as kube-vip's control-plane mode. One process on every control-plane host
contends for the Lease kube-system/kfab-control-plane-vip through the API server on its own host; the holder
puts the address on the interface carrying the host's own address and sends gratuitous ARP. Talking to the local
API server ties the address to a working API server: when that one stops answering, the holder cannot renew and
drops the address after the renew deadline, and a host whose API server works takes it over once the Lease
expires (kfab.machinery.leased_address).
"""

from __future__ import annotations

from pathlib import Path

from kfab.client import Client
from kfab.daemon import run_until_signal, setup_logging
from kfab.machinery.leased_address import LeaseTiming, contend_for_address

LEASE_NAMESPACE, LEASE_NAME = "kube-system", "kfab-control-plane-vip"
# kube-vip's defaults are 5 s / 3 s / 1 s; a shorter retry period makes the takeover follow expiry closely.
TIMING = LeaseTiming(lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)


def run(kubeconfig: Path, address: str, own_address: str, identity: str, timing: LeaseTiming = TIMING,
        verbose: bool = False) -> int:
    setup_logging(verbose)
    client = Client.from_kubeconfig(kubeconfig, user_agent="kfab-vip")

    async def hold() -> None:
        try:
            await contend_for_address(client, address, own_address, identity, LEASE_NAME, LEASE_NAMESPACE, timing)
        finally:
            await client.close()

    return run_until_signal(hold(), errors=(OSError, ValueError))
