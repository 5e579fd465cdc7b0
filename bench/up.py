"""Benchmark `kfab up` of the control plane: bare lab hosts -> API server answering kubectl from this machine
(first run), then a no-op rerun. Optionally with the apt package cache (`kfab cache up`) warm.

Runs on a lab of its own (network kfabupbench, 10.86.0.0/24: 1 control plane + registry, 2 workers), made fresh
for each first run, and takes it down at the end (--keep leaves it). The wheelhouse of kfab is built before
the clock starts (cached by content on the control machine) and passed as kfab_wheelhouse to every run.
    .venv/bin/python bench/up.py [--runs 1] [--package-proxy http://10.86.0.1:3142] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.lab import Lab  # noqa: E402
from kfab.ship.wheelhouse import build  # noqa: E402

INVENTORY = """\
all:
  vars:
    kfab_lab_network: kfabupbench
    kfab_lab_subnet: 10.86.0.0/24
    ansible_user: root
    ansible_ssh_private_key_file: ~/.local/share/kfab/lab/kfabupbench/id_ed25519
    kfab_known_hosts_file: ~/.local/share/kfab/lab/kfabupbench/known_hosts
    kfab_host_key_checking: accept-new
{proxy}  children:
    control_plane:
      hosts:
        ub1: {{ansible_host: 10.86.0.11}}
    etcd:
      hosts:
        ub1:
    registry:
      hosts:
        ub1:
    workers:
      hosts:
        ub2: {{ansible_host: 10.86.0.12}}
        ub3: {{ansible_host: 10.86.0.13}}
"""
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabupbench/admin.kubeconfig").expanduser()


def kfab_up(inventory: Path, wheelhouse: Path) -> tuple[float, str]:
    start = time.monotonic()
    # One wheelhouse for every run: edits to the shared work tree meanwhile must not count as changes.
    proc = subprocess.run([sys.executable, "-m", "kfab", "up", "-i", str(inventory), "-e", f"kfab_wheelhouse={wheelhouse}"],
                          capture_output=True, text=True,
                          cwd=REPO, stdin=subprocess.DEVNULL, timeout=1800)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"kfab up failed after {elapsed:.1f} s:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout


def kubectl_answers() -> bool:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    proc = subprocess.run([kubectl, "--kubeconfig", str(KUBECONFIG), "get", "ns", "default"], capture_output=True,
                          text=True, timeout=30)
    return proc.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="fresh-lab first runs to time (default 1)")
    parser.add_argument("--package-proxy", default="", help="apt proxy for the hosts (e.g. from `kfab cache up`)")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    wheelhouse = build()  # the wheelhouse: cached, not part of the timed install
    with tempfile.TemporaryDirectory(prefix="kfab-bench-up-") as tmp:
        inventory = Path(tmp, "bench.yml")
        proxy = f"    package_proxy: {args.package_proxy}\n" if args.package_proxy else ""
        inventory.write_text(INVENTORY.format(proxy=proxy))
        lab = Lab(inventory)
        firsts, reruns = [], []
        try:
            for _ in range(args.runs):
                lab.down()
                lab.up()
                elapsed, _ = kfab_up(inventory, wheelhouse)
                if not kubectl_answers():
                    raise SystemExit("kfab up finished but kubectl get ns default failed")
                firsts.append(elapsed)
                elapsed, out = kfab_up(inventory, wheelhouse)
                if "CHANGED" not in out:
                    raise SystemExit(out)
                reruns.append(elapsed)
        finally:
            if not args.keep:
                lab.down()
    cache = f"apt via {args.package_proxy}" if args.package_proxy else "no package cache"
    print(f"kfab up, bare lab hosts (3) -> control plane answering kubectl ({cache}): "
          + ", ".join(f"{t:.1f} s" for t in firsts))
    print("kfab up, no-op rerun: " + ", ".join(f"{t:.2f} s" for t in reruns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
