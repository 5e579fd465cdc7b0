"""Unit kill -> ready again (issue 15), on a cluster `kfab up` installed: every active kfab unit (and etcd) on every
host gets `kill -9` on its main PID, one at a time, and the clock runs until it serves again:

    kfab-apiserver            /readyz answers ok on the host
    kfab-node                 the node's Lease in kube-node-lease is renewed by the new process
    the others (and etcd)     systemd reports it active with a new main PID

    .venv/bin/python bench/unit_kill.py -i tests/lab/inventory/ops.yml [--repeat 2]

Baseline, side by side: a unit without Restart= (systemd's default, Restart=no) stays dead until someone starts
it. The clock runs on this machine and each check is one SSH command (~0.1-1 s on a loaded machine), so figures
are upper bounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from kfab.lab import Lab

LIST_UNITS = ("systemctl list-units 'kfab-*' etcd.service --state=active --no-legend --plain "
              "| awk '{print $1}' | grep -v '^kfab-lab-'")
READYZ = ("curl -s --max-time 2 --cacert /var/lib/kfab/pki/ca.crt --cert /var/lib/kfab/pki/admin.crt "
          "--key /var/lib/kfab/pki/admin.key https://127.0.0.1:6443/readyz")


def on(lab: Lab, host: str, cmd: str) -> str:
    return lab.ssh(host, cmd, timeout=60).stdout.strip()


def main_pid(lab: Lab, host: str, unit: str) -> int:
    return int(on(lab, host, f"systemctl show -p MainPID --value {unit}") or 0)


def lease_renewed(lab: Lab, apiserver: str, node: str) -> str:
    cmd = READYZ.replace("/readyz", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}")
    out = on(lab, apiserver, cmd)
    return out.split('"renewTime":"', 1)[1].split('"', 1)[0] if '"renewTime":"' in out else ""


def serving(lab: Lab, host: str, unit: str, old_pid: int, apiserver: str, before: str) -> bool:
    pid = main_pid(lab, host, unit)
    if pid in (0, old_pid):
        return False
    if unit == "kfab-apiserver.service":
        return on(lab, host, READYZ) == "ok"
    if unit == "kfab-node.service":
        # A renewal newer than any before the kill, by the new agent.
        return lease_renewed(lab, apiserver, host) > before
    return on(lab, host, f"systemctl is-active {unit}") == "active"


def kill_and_time(lab: Lab, host: str, unit: str, apiserver: str) -> float:
    old = main_pid(lab, host, unit)
    time.sleep(3)  # the node's last renewal before the kill is then at most the renewal interval old
    before = lease_renewed(lab, apiserver, host) if unit == "kfab-node.service" else ""
    on(lab, host, f"kill -9 {old}")
    t0 = time.monotonic()
    while not serving(lab, host, unit, old, apiserver, before):
        if time.monotonic() - t0 > 120:
            raise SystemExit(f"{host} {unit}: not serving 120 s after kill -9")
        time.sleep(0.2)
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", required=True, type=Path,
                        help="the lab inventory of a cluster kfab up installed")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    lab = Lab(args.inventory)
    apiserver = next(h for h in lab.hosts if "kfab-apiserver.service" in on(lab, h, LIST_UNITS).split())
    results: dict[str, list[float]] = {}
    for host in lab.hosts:
        for unit in on(lab, host, LIST_UNITS).split():
            for _ in range(args.repeat):
                took = kill_and_time(lab, host, unit, apiserver)
                results.setdefault(f"{host} {unit.removesuffix('.service')}", []).append(took)
                print(f"{host} {unit}: serving again {took:.1f} s after kill -9", flush=True)
            if unit == "kfab-apiserver.service":
                time.sleep(5)  # the other units reconnect before the next kill
    print("\nunit kill -9 -> serving again (median)          kfab units (Restart=always, RestartSec 2)   Restart=no")
    for name, runs in results.items():
        print(f"  {name:<44} {statistics.median(runs):>6.1f} s {'':>33} never")
    return 0


if __name__ == "__main__":
    sys.exit(main())
