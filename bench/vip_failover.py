"""Benchmark the API's virtual IP failover on the HA lab (tests/lab/inventory/ha.yml: ha1-ha3, 10.87.0.0/24,
VIP 10.87.0.100), side by side with the single-API-server case.

A writer creates ConfigMaps one after another (0.5 s connect / 2 s read timeout each) while a fault happens; the
figure is the time from the fault to the next acknowledged write, and every round also counts acknowledged
writes that are missing afterwards (must be 0).
  vip, holder host killed     `kfab lab stop --kill` of the host holding the VIP (a power cut), writes via the VIP
  vip, holder API stopped     `systemctl stop kfab-apiserver` on the VIP holder, writes through the VIP
  one API server restarted    `systemctl restart kfab-apiserver` on one host, writes straight to that host: what a
                              single-host cluster (no VIP) is without its API server during a restart
Run it under the HA lab's locks (whoever uses the lab takes them); it brings the lab and cluster up unless --reuse:
    flock -s /tmp/kfab-lab.lock flock /tmp/kfab-lab-ha.lock .venv/bin/python bench/vip_failover.py
        [--rounds 3] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.lab import Lab  # noqa: E402
from tests.lab.ha_failover import Writer, api_client, outage, power_on, vip_holders, wait_api_ready  # noqa: E402

INVENTORY = REPO / "tests" / "lab" / "inventory" / "ha.yml"
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabha/admin.kubeconfig").expanduser()
HOSTS = {"ha1": "10.87.0.11", "ha2": "10.87.0.12", "ha3": "10.87.0.13"}
VIP = "10.87.0.100"
CASES = ["vip, holder host killed", "vip, holder API stopped", "one API server restarted"]


def kubectl(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args],
                   check=True, capture_output=True, timeout=60)


def holder(lab: Lab) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = vip_holders(lab, list(HOSTS), VIP)
        if len(held) == 1:
            return held[0]
        time.sleep(0.5)
    raise SystemExit(f"no single VIP holder: {held}")


def ssh(lab: Lab, host: str, cmd: str) -> None:
    proc = lab.ssh(host, cmd, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{host}: {cmd}: {proc.stdout}{proc.stderr}")


def round_of(lab: Lab, case: str, n: int) -> tuple[float, int]:
    namespace = f"bench-vip-{CASES.index(case)}-{n}-{int(time.time())}"
    kubectl("create", "namespace", namespace)
    if case == "one API server restarted":
        host = list(HOSTS)[n % len(HOSTS)]
        api = api_client(KUBECONFIG, server=f"https://{HOSTS[host]}:6443")
        fault, recover = (lambda: ssh(lab, host, "systemctl restart kfab-apiserver")), (lambda: None)
    else:
        host, api = holder(lab), api_client(KUBECONFIG)
        if case == "vip, holder host killed":
            fault, recover = (lambda: lab.stop(host, kill=True)), (lambda: power_on(lab, host))
        else:
            fault = lambda: ssh(lab, host, "systemctl stop kfab-apiserver")  # noqa: E731
            recover = lambda: ssh(lab, host, "systemctl start kfab-apiserver")  # noqa: E731
    with Writer(api, namespace) as writer:
        try:
            seconds = outage(writer, fault)
        finally:
            recover()
    lost = len(writer.lost())
    wait_api_ready(lab, host)
    kubectl("delete", "namespace", namespace, "--wait=false")
    return seconds, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="the HA lab and its cluster are up already")
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    args = parser.parse_args()
    lab = Lab(INVENTORY)
    if not args.reuse:
        lab.down()
        lab.up()
        subprocess.run([sys.executable, "-m", "kfab", "up", "-i", str(INVENTORY)], check=True, cwd=REPO,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
    results: dict[str, list[tuple[float, int]]] = {case: [] for case in CASES}
    try:
        for n in range(args.rounds):
            for case in CASES:
                results[case].append(round_of(lab, case, n))
                print(f"  {case}: {results[case][-1][0]:.2f} s, lost {results[case][-1][1]}", flush=True)
    finally:
        if not args.keep:
            lab.down()
    print(f"\nfault -> next acknowledged write ({args.rounds} rounds; limit 15 s, goal 5 s)")
    print(f"{'case':28} {'median s':>9} {'max s':>7} {'lost writes':>12}")
    for case in CASES:
        seconds = [s for s, _ in results[case]]
        print(f"{case:28} {statistics.median(seconds):9.2f} {max(seconds):7.2f} "
              f"{sum(lost for _, lost in results[case]):12d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
