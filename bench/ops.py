"""Benchmark the lifecycle commands on a warm lab: `kfab add-node` of a bare host until its Node is Ready and
schedulable (target <= 30 s), `kfab remove-node` (drain + stop + delete), `kfab add-node` again of a host whose
packages are installed already, `kfab backup` and `kfab restore`.

The lab is tests/lab/inventory/ops.yml (network kfabops, 10.92.0.0/24: o1 control plane + registry, o2/o3 workers,
o4 the host added), fresh for the run and taken down at the end (--keep leaves it). "Warm" means: every host
fetches its Debian packages through a package cache of the bench's own (`kfab cache up` on 10.92.0.1:3144, its
directory kept between runs) that the first `kfab up` of o1-o3 filled, and the kfab wheelhouse is built before
the clock starts. The bench stops the cache process it started.
    .venv/bin/python bench/ops.py [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.lab import Lab  # noqa: E402
from kfab.install.wheelhouse import build  # noqa: E402

KFAB = [sys.executable, "-m", "kfab"]
LAB_INVENTORY = REPO / "tests" / "lab" / "inventory" / "ops.yml"
GATEWAY = "10.92.0.1"
CACHE_PORT = 3144
CACHE_DIR = Path("~/.cache/kfab/bench-ops-package-cache").expanduser()


def write_inventories(workdir: Path) -> tuple[Path, Path]:
    """cluster.yml (o1-o3) and grown.yml (o4 under workers), both through the bench's package cache."""
    data = yaml.safe_load(LAB_INVENTORY.read_text())
    data["all"]["vars"]["package_proxy"] = f"http://{GATEWAY}:{CACHE_PORT}"
    spare = data["all"]["children"].pop("spare")
    cluster = workdir / "cluster.yml"
    cluster.write_text(yaml.safe_dump(data))
    data["all"]["children"]["workers"]["hosts"].update(spare["hosts"])
    grown = workdir / "grown.yml"
    grown.write_text(yaml.safe_dump(data))
    return cluster, grown


def kfab(*args: str) -> float:
    start = time.monotonic()
    proc = subprocess.run([*KFAB, *args], capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL,
                          timeout=1800)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"kfab {' '.join(args)} failed after {elapsed:.1f} s:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    wheelhouse = build()
    pinned = ("-e", f"kfab_wheelhouse={wheelhouse}")
    lab = Lab(LAB_INVENTORY)
    lab.down()
    results: list[str] = []
    cache_started = False
    with tempfile.TemporaryDirectory(prefix="kfab-bench-ops-") as tmp:
        cluster, grown = write_inventories(Path(tmp))
        try:
            lab.up()
            subprocess.run([*KFAB, "cache", "up", "--bind", GATEWAY, "--port", str(CACHE_PORT), "--state-dir",
                            str(CACHE_DIR)], check=True, cwd=REPO, capture_output=True)
            cache_started = True
            seconds = kfab("up", "-i", str(cluster), *pinned)
            results.append(f"kfab up o1-o3 (fills the cache):        {seconds:6.1f} s")
            seconds = kfab("add-node", "-i", str(grown), "o4", *pinned)
            results.append(f"add-node o4, bare host -> Ready:       {seconds:6.1f} s   (target <= 30 s)")
            seconds = kfab("remove-node", "-i", str(grown), "o4")
            results.append(f"remove-node o4 (no pods on it):        {seconds:6.1f} s")
            seconds = kfab("add-node", "-i", str(grown), "o4", *pinned)
            results.append(f"add-node o4 again (packages there):    {seconds:6.1f} s")
            backup = Path(tmp) / "state.db"
            results.append(f"backup (SQLite):                       "
                           f"{kfab('backup', '-i', str(grown), '-o', str(backup)):6.1f} s")
            results.append(f"restore (API down meanwhile):          "
                           f"{kfab('restore', '-i', str(grown), str(backup), '--yes'):6.1f} s")
        finally:
            if cache_started:
                subprocess.run([*KFAB, "cache", "down", "--state-dir", str(CACHE_DIR)], cwd=REPO, capture_output=True)
            if not args.keep:
                lab.down()
    print("kfab lifecycle commands, lab of 4 hosts, warm package cache:")
    for line in results:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
