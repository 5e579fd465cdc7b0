"""Benchmark the local lab: `kfab lab up` of 3 hosts (image cached), a second `up` (no-op), `down`.

Runs on a lab of its own (network kfabbench, 10.82.0.0/24) so it never disturbs a lab in use;
`-i FILE` measures another lab inventory instead. Prints one line per step and round.
    .venv/bin/python bench/lab.py [--rounds 3] [-i inventory.yml]

`--vms N` measures QEMU VM hosts instead (network kfabbenchvm on 10.94.0.0/24, the subnet of
tests/lab/inventory/vm.yml: not at the same time as that test): `kfab lab up` of N VMs (start -> SSH
login), each QEMU's RSS once booted and idle, `down`; `--cold-image` first builds the VM image from
scratch in a temporary data directory (minutes; the cached image is not touched).
    .venv/bin/python bench/lab.py --vms 1 [--rounds 3] [--cold-image]
"""

from __future__ import annotations

import argparse
import os
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

BENCH_VM_INVENTORY = """\
all:
  vars:
    kfab_lab_network: kfabbenchvm
    kfab_lab_subnet: 10.94.0.0/24
    ansible_user: root
  hosts:
{hosts}
"""

KFAB = str(Path(sys.executable).parent / "kfab")


def timed(*args: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([KFAB, *args], capture_output=True, text=True)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"`kfab {' '.join(args)}` failed: {proc.stderr.strip()}")
    return took


def cold_vm_image() -> float:
    """Seconds to build the VM image from nothing (debootstrap, kernel, packages, disk) in a temp dir."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as data:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", "from kfab.lab.vm_image import ensure_vm_image; "
                               "ensure_vm_image()"], env={**os.environ, "XDG_DATA_HOME": data},
                              capture_output=True, text=True)
        took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"VM image build failed: {proc.stderr.strip()}")
    return took


def bench_vms(args) -> None:
    from kfab.lab import Lab
    from kfab.lab import vm as labvm
    from kfab.lab.vm_image import ensure_vm_image
    if args.cold_image:
        print(f"VM image build (cold): {cold_vm_image():.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "vms.yml"
        inventory.write_text(BENCH_VM_INVENTORY.format(hosts="".join(
            f"    kbv{n}: {{ansible_host: 10.94.0.{20 + n}, kfab_lab_vm: true}}\n"
            for n in range(1, args.vms + 1))))
        ensure_vm_image()  # built here if the recipe changed, outside the measurements
        timed("lab", "down", "-i", str(inventory))
        lab = Lab(inventory)
        results: dict[str, list[float]] = {f"up ({args.vms} VM(s), start -> SSH login)": [], "down": []}
        rss: list[float] = []
        try:
            for n in range(1, args.rounds + 1):
                took = timed("lab", "up", "-i", str(inventory))
                results[f"up ({args.vms} VM(s), start -> SSH login)"].append(took)
                time.sleep(10)  # let the boot's last units settle before reading memory
                rss += [labvm.rss_mib(lab.spec, h.name) or 0.0 for h in lab.spec.hosts]
                took_down = timed("lab", "down", "-i", str(inventory))
                results["down"].append(took_down)
                print(f"round {n}: up {took:.1f} s, RSS {', '.join(f'{r:.0f}' for r in rss[-args.vms:])} MiB, "
                      f"down {took_down:.2f} s", flush=True)
        finally:
            subprocess.run([KFAB, "lab", "down", "-i", str(inventory)], capture_output=True)
    for step, times in results.items():
        print(f"median kfab lab {step}: {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} rounds)")
    print(f"RSS per VM (idle after boot): median {statistics.median(rss):.0f} MiB "
          f"(min {min(rss):.0f}, max {max(rss):.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vms", type=int, default=0, help="measure N QEMU VM hosts instead")
    parser.add_argument("--cold-image", action="store_true", help="with --vms: also build the VM image cold")
    args = parser.parse_args()
    if args.vms:
        bench_vms(args)
        return
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
