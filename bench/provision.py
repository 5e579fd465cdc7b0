"""Benchmark the provisioner: `kfab up` of site.yml (role common) on a fresh 3-host lab, then the no-op
rerun (target: <= 5 s for 3 hosts). Prints one line per step and round.

Runs on a lab of its own (network kfabpbench, 10.83.0.0/24) so it never disturbs a lab in use; the lab
is taken down at the end.
    .venv/bin/python bench/provision.py [--rounds 1] [--reruns 3]

`--versus-ansible local|lab`: the same role written for Ansible (tests/ansible_compat), first run and no-op
rerun, by kfab and by ansible-playbook (ansible-core from the test extras; no fact gathering, pipelining,
ControlPersist), side by side with the ratio: over the local connection into temporary directories, or
on the bench lab's 3 hosts over SSH.
"""

from __future__ import annotations

import argparse
import os
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


COMPAT = REPO / "tests" / "ansible_compat"


def ansible_run(inventory: str, app_root: str, home: Path, connection: str) -> tuple[float, int]:
    env = os.environ | {
        "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=120s -o ControlPath={home}/cp-%C "
                            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, "-e", f"app_root={app_root}",
           "-f", "10", "site.yml"] + (["-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]
                                      if connection == "local" else [])
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=COMPAT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
    return took, sum(int(n) for n in re.findall(r"changed=(\d+)", proc.stdout.split("PLAY RECAP", 1)[1]))


def kfab_run(inventory: str, app_root: str) -> tuple[float, int]:
    t0 = time.monotonic()
    proc = subprocess.run([KFAB, "up", "-i", inventory, "site.yml", "-e", f"app_root={app_root}"], cwd=COMPAT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"kfab up failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
    return took, changed_total(proc.stdout)


def versus_ansible(where: str, rounds: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if where == "local":
            kfab_inv = str(tmp / "local.yml")
            Path(kfab_inv).write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
            ansible_inv = "localhost,"
        else:
            kfab_inv = ansible_inv = str(tmp / "lab.yml")
            Path(kfab_inv).write_text(BENCH_INVENTORY)
            timed("lab", "down", "-i", kfab_inv)
            timed("lab", "up", "-i", kfab_inv)
        try:
            for n in range(1, rounds + 1):
                roots = {tool: (str(tmp / f"{tool}-{n}") if where == "local" else f"/root/compat-{tool}-{n}")
                         for tool in ("kfab", "ansible")}
                home = tmp / f"ansible-home-{n}"
                home.mkdir()
                results = {"kfab": [kfab_run(kfab_inv, roots["kfab"]) for _ in range(2)],
                           "ansible": [ansible_run(ansible_inv, roots["ansible"], home, where) for _ in range(2)]}
                for step, i in (("first run", 0), ("no-op rerun", 1)):
                    (k, kc), (a, ac) = results["kfab"][i], results["ansible"][i]
                    rows.append((step, k, a))
                    print(f"round {n} {step:<12} kfab {k:6.2f} s ({kc:2d} changed)   ansible-core {a:6.2f} s "
                          f"({ac:2d} changed)   ansible/kfab {a / k:5.1f}x", flush=True)
        finally:
            if where == "lab":
                subprocess.run([KFAB, "lab", "down", "-i", kfab_inv], capture_output=True)
    for step in ("first run", "no-op rerun"):
        k = statistics.median(r[1] for r in rows if r[0] == step)
        a = statistics.median(r[2] for r in rows if r[0] == step)
        print(f"median {step} ({where}): kfab {k:.2f} s, ansible-core {a:.2f} s: ansible-core takes {a / k:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh labs to provision (each ~1 min)")
    parser.add_argument("--reruns", type=int, default=3, help="no-op reruns per round")
    parser.add_argument("--versus-ansible", choices=("local", "lab"),
                        help="time tests/ansible_compat's role under kfab and under ansible-playbook instead")
    args = parser.parse_args()
    if args.versus_ansible:
        versus_ansible(args.versus_ansible, args.rounds)
        return
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
