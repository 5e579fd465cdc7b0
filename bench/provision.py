"""Benchmark the provisioner: `kfab up` of site.yml (role common) on a fresh 3-host lab, then the no-op
rerun (target: <= 5 s for 3 hosts). Prints one line per step and round.

Runs on a lab of its own (network kfabpbench, 10.83.0.0/24) so it never disturbs a lab in use; the lab
is taken down at the end.
    .venv/bin/python bench/provision.py [--rounds 1] [--reruns 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KFAB = str(Path(sys.executable).parent / "kfab")

BENCH_INVENTORY = """\
all:
  vars:
    kfab_lab_network: kfabpbench
    kfab_lab_subnet: 10.83.0.0/24
    ansible_user: root
    ansible_ssh_private_key_file: ~/.local/share/kfab/lab/kfabpbench/id_ed25519
    kfab_known_hosts_file: ~/.local/share/kfab/lab/kfabpbench/known_hosts
    kfab_host_key_checking: accept-new
  children:
    control_plane:
      hosts:
        kp1: {ansible_host: 10.83.0.11}
    workers:
      hosts:
        kp2: {ansible_host: 10.83.0.12}
        kp3: {ansible_host: 10.83.0.13}
"""


def timed(*args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run([KFAB, *args], capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"`kfab {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took, proc.stdout


def changed_total(output: str) -> int:
    rows = output.split("\nRECAP\n", 1)[1].splitlines()[1:]
    return sum(int(re.sub(r"\x1b\[[0-9;]*m", "", r).split()[2]) for r in rows if r.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh labs to provision (each ~1 min)")
    parser.add_argument("--reruns", type=int, default=3, help="no-op reruns per round")
    args = parser.parse_args()
    first_runs, reruns = [], []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = str(Path(tmp) / "lab.yml")
        Path(inventory).write_text(BENCH_INVENTORY)
        try:
            for n in range(1, args.rounds + 1):
                timed("lab", "down", "-i", inventory)
                took, _ = timed("lab", "up", "-i", inventory)
                print(f"round {n}: kfab lab up (3 fresh hosts): {took:.2f} s", flush=True)
                took, out = timed("up", "-i", inventory)
                first_runs.append(took)
                print(f"round {n}: first kfab up of common: {took:.2f} s ({changed_total(out)} changed)",
                      flush=True)
                for _ in range(args.reruns):
                    took, out = timed("up", "-i", inventory)
                    reruns.append(took)
                    print(f"round {n}: no-op rerun: {took:.2f} s ({changed_total(out)} changed)", flush=True)
        finally:
            subprocess.run([KFAB, "lab", "down", "-i", inventory], capture_output=True)
    print(f"median first kfab up (3 hosts): {statistics.median(first_runs):.2f} s")
    print(f"median no-op rerun (3 hosts): {statistics.median(reruns):.2f} s "
          f"(min {min(reruns):.2f}, max {max(reruns):.2f}; target <= 5 s)")


if __name__ == "__main__":
    main()
