"""Benchmark the offline bundle (issue 18): its size and `kfab bundle create` time, and `kfab up --bundle` with no
route out of the lab beside an online `kfab up` through a warm package cache — the baseline an install night
has today — on the same 3 hosts of inventory/lab.yml's shape.

Both phases first build the demo image here (examples/demo/build.sh: the inventories' kfab_bundle_images).
Phase `create`: `kfab bundle create -i CREATE_INVENTORY` from fresh hosts of that inventory, taken down after (the
packages are resolved on its first host), then `kfab bundle verify`. Default inventory/lab.yml (the quick-start
lab, 10.78: hold /tmp/kfab-lab-quickstart.lock); tests/lab/inventory/bundle.yml has the same groups, sizes,
packages and images (tests/unit/test_bundle.py holds them equal). `--resolve-with tests/lab/inventory/bundle.yml`
makes inventory/lab.yml's bundle with apt resolving on a fresh bn1 (labh1's connection variables pointed at it),
so no quick-start lab is needed: everything then runs on the bundle lab alone.
Phase `up`: on the bundle lab (10.85, tests/lab/inventory/bundle.yml: bn1 control plane + etcd + registry, bn2 and
bn3 workers; hold /tmp/kfab-lab-bundle.lock), from fresh hosts each time:
  1. a package cache of its own (`kfab cache up` on 10.85.0.1:3142, kept in CACHE_DIR between bench runs),
     warmed by `kfab bundle create` resolving on bn1 through it (the bundle for run 3 at the same time);
  2. online: `kfab up -e package_proxy=http://10.85.0.1:3142` (the bundle's wheelhouse, so both install the
     same kfab) and `kfab image push` of the demo image — what --bundle does after its run;
  3. offline: the lab cut off from everything outside it (tests/lab/offline.py), `kfab up --bundle`.
    flock -s /tmp/kfab-lab.lock flock /tmp/kfab-lab-bundle.lock \\
        .venv/bin/python bench/bundle.py [--phases create,up] [--resolve-with tests/lab/inventory/bundle.yml]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.lab import Lab  # noqa: E402
from kfab.provision.bundle.archive import unpacked  # noqa: E402
from tests.lab.offline import Cutoff, lab_bridge  # noqa: E402

KFAB = [sys.executable, "-m", "kfab"]
LAB_INVENTORY = REPO / "inventory" / "lab.yml"
BUNDLE_INVENTORY = REPO / "tests" / "lab" / "inventory" / "bundle.yml"
CACHE = "http://10.85.0.1:3142"
CACHE_DIR = Path("~/.cache/kfab/bench-bundle-package-cache").expanduser()
DEMO_IMAGE = "localhost/kfab-demo:1"


def kfab(*args: str, timeout: float = 3600) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"kfab {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc, time.monotonic() - started


def fresh(lab: Lab) -> None:
    lab.down()
    lab.up()


def build_demo_image() -> None:
    built = subprocess.run(["bash", str(REPO / "examples" / "demo" / "build.sh"), DEMO_IMAGE], capture_output=True,
                           text=True)
    if built.returncode != 0:
        raise SystemExit(f"examples/demo/build.sh failed:\n{built.stdout}{built.stderr}")


def phase_create(inventory: Path, out: Path, resolve_with: Path | None = None) -> dict:
    lab = Lab(resolve_with or inventory)
    fresh(lab)
    resolve = []
    if resolve_with is not None:
        # the inventory's first host reached at the other lab's first host (same Debian release, a fresh host)
        address = next(iter(lab.hosts.values()))
        reach = {"ansible_host": address, "ansible_ssh_private_key_file": str(lab.spec.key_file),
                 "kfab_known_hosts_file": str(lab.spec.known_hosts_file)}
        resolve = ["--resolve-on", next(iter(Lab(inventory).hosts)), "-e", json.dumps(reach)]
    try:
        proc, seconds = kfab("bundle", "create", "-i", str(inventory), "-o", str(out), *resolve)
    finally:
        lab.down()
    print(proc.stderr, end="")
    _, verify_seconds = kfab("bundle", "verify", str(out))
    return {"size_mb": out.stat().st_size / 1e6, "create_s": seconds, "verify_s": verify_seconds}


def phase_up(tmp: Path) -> dict:
    lab = Lab(BUNDLE_INVENTORY)
    bundle = tmp / "bn.tar"
    fresh(lab)   # first: the cache listens on the lab network's gateway, which exists once a host is attached
    kfab("cache", "up", "--bind", "10.85.0.1", "--port", "3142", "--state-dir", str(CACHE_DIR))
    try:
        lab.ssh("bn1", f"echo 'Acquire::http::Proxy \"{CACHE}\";' > /etc/apt/apt.conf.d/01kfab-proxy")
        kfab("bundle", "create", "-i", str(BUNDLE_INVENTORY), "-o", str(bundle))
        wheels = unpacked(bundle)[0] / "wheels"
        fresh(lab)
        started = time.monotonic()
        online_vars = {"package_proxy": CACHE, "kfab_wheelhouse": str(wheels)}
        kfab("up", "-i", str(BUNDLE_INVENTORY), "-e", json.dumps(online_vars))
        kfab("image", "push", "-i", str(BUNDLE_INVENTORY), DEMO_IMAGE)
        online = time.monotonic() - started
        fresh(lab)
        with Cutoff(lab_bridge("kfabbundle")) as cutoff:
            cutoff.zero()
            _, offline = kfab("up", "-i", str(BUNDLE_INVENTORY), "--bundle", str(bundle))
            tried = cutoff.packets()
    finally:
        kfab("cache", "down", "--state-dir", str(CACHE_DIR))
        lab.down()
    return {"online_s": online, "offline_s": offline, "tried": tried}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="create,up")
    parser.add_argument("--create-inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--resolve-with", type=Path, metavar="INVENTORY",
                        help="phase create: resolve the packages on this lab's first host instead of starting the "
                             "create inventory's lab (e.g. tests/lab/inventory/bundle.yml: no 10.78 lab needed)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    load = Path("/proc/loadavg").read_text().split()[0]
    build_demo_image()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-bundle-") as tmp:
        tmp = Path(tmp)
        if "create" in phases:
            c = phase_create(args.create_inventory, tmp / "lab.tar", args.resolve_with)
            name = args.create_inventory.resolve().relative_to(REPO)
            print(f"\nbundle of {name} (load {load}): {c['size_mb']:.1f} MB, "
                  f"create {c['create_s']:.1f} s, verify {c['verify_s']:.1f} s")
        if "up" in phases:
            u = phase_up(tmp)
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"\nkfab up of 3 fresh hosts, the whole site.yml (bn1 control plane + etcd + registry, bn2 and bn3 "
                  f"workers; load {load} after):")
            print(f"{'online, warm package cache':<40}{'offline, --bundle, no route out':<40}")
            print(f"{u['online_s']:<40.1f}{u['offline_s']:<40.1f}")
            print(f"packets the offline hosts sent towards a mirror (80/443) or the cache port: {u['tried']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
