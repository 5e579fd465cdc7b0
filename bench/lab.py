"""Benchmark the local lab: `kfab lab up` of 3 hosts (image cached), a second `up` (no-op), `down`.

Runs on a lab of its own (network kfabbench, 10.82.0.0/24) so it never disturbs a lab in use;
`-i FILE` measures another lab inventory instead. Prints one line per step and round.
    .venv/bin/python bench/lab.py [--rounds 3] [-i inventory.yml]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_INVENTORY = """\
all:
  vars:
    kfab_lab_network: kfabbench
    kfab_lab_subnet: 10.82.0.0/24
    ansible_user: root
  children:
    control_plane:
      hosts:
        kb1: {ansible_host: 10.82.0.11}
    workers:
      hosts:
        kb2: {ansible_host: 10.82.0.12}
        kb3: {ansible_host: 10.82.0.13}
"""

KFAB = str(Path(sys.executable).parent / "kfab")


def timed(*args: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([KFAB, *args], capture_output=True, text=True)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"`kfab {' '.join(args)}` failed: {proc.stderr.strip()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = args.inventory
        if not inventory:
            inventory = str(Path(tmp) / "lab.yml")
            Path(inventory).write_text(BENCH_INVENTORY)
        # Build the image (if the recipe changed) and clear leftovers outside the measurements.
        timed("lab", "up", "-i", inventory)
        timed("lab", "down", "-i", inventory)
        results: dict[str, list[float]] = {"up (3 hosts, image cached)": [], "second up (no-op)": [],
                                           "down": []}
        try:
            for n in range(1, args.rounds + 1):
                for step, cmd in zip(results, ("up", "up", "down")):
                    took = timed("lab", cmd, "-i", inventory)
                    results[step].append(took)
                    print(f"round {n}: kfab lab {step}: {took:.2f} s", flush=True)
        finally:
            subprocess.run([KFAB, "lab", "down", "-i", inventory], capture_output=True)
        for step, times in results.items():
            print(f"median kfab lab {step}: {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} rounds)")


if __name__ == "__main__":
    main()
