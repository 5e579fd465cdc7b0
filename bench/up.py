"""Benchmark `kfab up` of the whole site: bare lab hosts -> every node Ready (first run: without a package cache,
with a cold one that fills, with a warm one), a no-op rerun, and `kfab add-node` of a 4th host.

Runs on a lab of its own (network kfabupbench, 10.86.0.0/24: ub1 control plane + registry, ub2/ub3 workers; ub4
joins for add-node), made fresh for each first run and taken down at the end (--keep leaves it). The package
cache is one `kfab cache up` of its own (10.86.0.1:3143, cache kept in CACHE_DIR between bench runs, so
"cold" is measured only while that directory is empty; --cold empties it first); the bench stops its process.
The wheelhouse of kfab is built before the clock starts (cached by content) and passed to every run.
--profile prints `kfab up --profile`'s table (plays, roles, slowest tasks) after each first run.
--versus-sequential also makes a first run (warm cache) with the plays as they were before issue 19: kfab
installed only in the plays of the roles that run it (control plane, then workers: one after the other), and
python3-venv in an apt run of its own — the baseline, in the same bench run.
    .venv/bin/python bench/up.py [--phases none,cache,noop,add-node] [--cold] [--keep] [--profile]
                                 [--versus-sequential]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfab.lab import Lab  # noqa: E402
from kfab.lab.errors import LabError  # noqa: E402
from kfab.install.wheelhouse import build  # noqa: E402

KFAB = [sys.executable, "-m", "kfab"]
GATEWAY = "10.86.0.1"
CACHE_PORT = 3143            # not 3142: a `kfab cache up` on all addresses may hold that one
CACHE_DIR = Path("~/.cache/kfab/bench-up-package-cache").expanduser()
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabupbench/admin.kubeconfig").expanduser()
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
{new_worker}"""
NEW_WORKER = "        ub4: {ansible_host: 10.86.0.14}\n"


def write_inventory(path: Path, proxy: bool, with_new_worker: bool) -> None:
    path.write_text(INVENTORY.format(
        proxy=f"    package_proxy: http://{GATEWAY}:{CACHE_PORT}\n" if proxy else "",
        new_worker=NEW_WORKER if with_new_worker else ""))


def sequential_site(tmp: Path) -> Path:
    """site.yml as before issue 19 (the baseline): no kfab-install in the basics play, python3-venv in its own
    apt run (kfab-install's task). Written beside links to roles/ and templates/, where a playbook finds its
    roles and their shared templates."""
    plays = yaml.safe_load((REPO / "site.yml").read_text())
    plays[0]["roles"] = [r for r in plays[0]["roles"] if r != "kfab-install"]
    (tmp / "roles").symlink_to(REPO / "roles")
    (tmp / "templates").symlink_to(REPO / "templates")
    (tmp / "site-sequential.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    return tmp / "site-sequential.yml"


def kfab(*args: str, wheelhouse: Path) -> tuple[float, str]:
    """Time one kfab command; one wheelhouse for every run (tree edits meanwhile must not count as changes)."""
    start = time.monotonic()
    proc = subprocess.run([*KFAB, *args, "-e", f"kfab_wheelhouse={wheelhouse}"], capture_output=True, text=True,
                          cwd=REPO, stdin=subprocess.DEVNULL, timeout=1800)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"kfab {' '.join(args)} failed after {elapsed:.1f} s:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout


def ready_nodes() -> set[str]:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    proc = subprocess.run([kubectl, "--kubeconfig", str(KUBECONFIG), "get", "nodes", "-o", "json"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return set()
    return {n["metadata"]["name"] for n in json.loads(proc.stdout)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}


def wait_ready(nodes: set[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not nodes <= ready_nodes():
        if time.monotonic() > deadline:
            raise SystemExit(f"nodes {sorted(nodes - ready_nodes())} not Ready {timeout:g} s after kfab up")
        time.sleep(0.5)


def lab_up(lab: Lab) -> None:
    """Start the lab (untimed); once more if SSH was slow to answer: on a loaded machine it can be."""
    try:
        lab.up()
    except LabError as exc:
        print(f"lab up: {exc}; once more", file=sys.stderr)
        lab.up()


def first_run(inventory: Path, wheelhouse: Path, profile: bool = False, site: Path | None = None) -> float:
    """Fresh lab hosts, then the clock: kfab up until both workers' Nodes are Ready."""
    lab = Lab(inventory)
    lab.down()
    lab_up(lab)
    start = time.monotonic()
    plays = [str(site), "-e", '{"common_kfab_host_packages": []}'] if site else []
    _, out = kfab("up", "-i", str(inventory), *plays, *(["--profile"] if profile else []), wheelhouse=wheelhouse)
    wait_ready({"ub2", "ub3"})
    elapsed = time.monotonic() - start
    if profile:
        print(f"first run {elapsed:.1f} s; " + out[out.rindex("PROFILE"):], flush=True)
    return elapsed


class BenchCache:
    """The bench's own `kfab cache up` on the lab gateway (which exists only while the lab is up)."""

    def __init__(self):
        self.started = False

    def up(self) -> None:
        if not self.started:
            subprocess.run([*KFAB, "cache", "up", "--bind", GATEWAY, "--port", str(CACHE_PORT),
                            "--state-dir", str(CACHE_DIR)], check=True, cwd=REPO, capture_output=True)
            self.started = True

    def down(self) -> None:
        if self.started:
            subprocess.run([*KFAB, "cache", "down", "--state-dir", str(CACHE_DIR)], cwd=REPO, capture_output=True)

    @staticmethod
    def is_cold() -> bool:
        return not any((CACHE_DIR / "cache").glob("debrep/pool/*"))


def add_node_available() -> bool:
    proc = subprocess.run([*KFAB, "add-node", "--help"], capture_output=True, text=True, cwd=REPO)
    return proc.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="none,cache,noop,add-node",
                        help="comma-separated: none (no package cache), cache (cold if empty, then warm), "
                             "noop, add-node (default: all)")
    parser.add_argument("--cold", action="store_true", help="empty the bench's package cache first")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument("--profile", action="store_true", help="print kfab up --profile after each first run")
    parser.add_argument("--versus-sequential", action="store_true",
                        help="also a first run (warm cache) with the plays as before issue 19, as the baseline")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    unknown = phases - {"none", "cache", "noop", "add-node"}
    if unknown:
        parser.error(f"--phases: unknown {sorted(unknown)}")
    if not phases & {"none", "cache"}:
        parser.error("--phases: noop and add-node need a first run before them (none or cache)")
    if args.cold:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
    results: list[str] = []
    cache = BenchCache()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-up-") as tmp:
        # The wheelhouse, not part of the timed install; a copy of the bench's own: the shared cache keeps only
        # the latest few, and builds from other work during a long bench run removed it once.
        wheelhouse = Path(shutil.copytree(build(), Path(tmp, "wheelhouse")))
        inventory = Path(tmp, "bench.yml")
        try:
            if "none" in phases:
                write_inventory(inventory, proxy=False, with_new_worker=False)
                seconds = first_run(inventory, wheelhouse, args.profile)
                results.append(f"first run, no package cache:      {seconds:6.1f} s")
            if "cache" in phases:
                write_inventory(inventory, proxy=True, with_new_worker=False)
                lab_up(Lab(inventory))       # the gateway address the cache listens on
                cache.up()
                if BenchCache.is_cold():
                    seconds = first_run(inventory, wheelhouse, args.profile)
                    results.append(f"first run, cold package cache:    {seconds:6.1f} s (fills it)")
                if args.versus_sequential:
                    # The baseline first: a first run after the cache starts pays its index checks with the mirror.
                    seconds = first_run(inventory, wheelhouse, args.profile, sequential_site(Path(tmp)))
                    results.append(f"first run, plays before issue 19: {seconds:6.1f} s (kfab installed play by play)")
                seconds = first_run(inventory, wheelhouse, args.profile)
                results.append(f"first run, warm package cache:    {seconds:6.1f} s")
            if "noop" in phases:
                seconds, out = kfab("up", "-i", str(inventory), wheelhouse=wheelhouse)
                if "CHANGED" not in out:
                    raise SystemExit(out)
                results.append(f"no-op rerun:                      {seconds:6.1f} s")
            if "add-node" in phases:
                if not add_node_available():
                    results.append("add-node: `kfab add-node` is not in this kfab yet (issue 6, engineer B)")
                else:
                    write_inventory(inventory, proxy=cache.started, with_new_worker=True)
                    lab_up(Lab(inventory))   # ub4 starts bare, as a new machine would
                    seconds, _ = kfab("add-node", "-i", str(inventory), "ub4", wheelhouse=wheelhouse)
                    wait_ready({"ub2", "ub3", "ub4"})
                    results.append(f"add-node ub4 -> Ready:            {seconds:6.1f} s")
        finally:
            cache.down()
            if not args.keep:
                Lab(inventory).down()
    print("kfab up, lab of 3 hosts (+1 for add-node); targets: first run warm <= 90 s, no-op <= 10 s, "
          "add-node <= 30 s")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
