"""Benchmark `kfab doctor`: how long the preflight of an inventory's hosts takes (in process, after one warm-up
round), beside its floor — the same hosts each reached over SSH in parallel running `true` (connection set-up
and one round trip, what any per-host check costs at least) — so the figure shows what the probe itself adds.

Needs the inventory's hosts up; for the test lab (kt1-3, 10.79) hold its locks:
    flock -s /tmp/kfab-lab.lock flock /tmp/kfab-lab-lab.lock .venv/bin/python bench/doctor.py [-i INV] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.provision.api import Site  # noqa: E402
from kfab.provision.doctor import examine  # noqa: E402
from kfab.provision.inputs import load_inputs  # noqa: E402


def ssh_true(site: Site, hosts: list[str]) -> float:
    def one(host: str) -> None:
        remote = site.connect(host)
        try:
            assert remote.run("true").rc == 0
        finally:
            remote.close()
    started = time.monotonic()
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(one, hosts))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", default=str(REPO / "tests/lab/inventory/lab.yml"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    inputs = load_inputs(args.inventory, str(REPO / "site.yml"), [])
    hosts = list(inputs.inventory.hosts)
    site = Site(args.inventory, REPO / "site.yml")
    examine(inputs.inventory, inputs.plays, inputs.extra_vars, hosts)   # warm-up: imports, known_hosts
    doctor_times, floor_times = [], []
    for _ in range(args.rounds):
        exam = examine(inputs.inventory, inputs.plays, inputs.extra_vars, hosts)
        doctor_times.append(exam.seconds)
        floor_times.append(ssh_true(site, hosts))
    counts = exam.as_dict()["counts"]
    print(f"kfab doctor, {len(hosts)} hosts ({', '.join(hosts)}), {args.rounds} rounds; findings of the last: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))
    print(f"{'':28}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, values in (("kfab doctor", doctor_times), ("baseline: ssh + true, parallel", floor_times)):
        print(f"{name:<28}{statistics.median(values):>10.2f}{min(values):>10.2f}{max(values):>10.2f}")


if __name__ == "__main__":
    main()
