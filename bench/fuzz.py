"""Fuzz suites' throughput: the hypothesis suites (selectors, bodies, patches, inventories in process; a real
`kfab server` fed manifests, patches, queries and raw bodies) at CI's budget and at a longer on-demand budget,
side by side: cases run, seconds, cases/s per suite, and whether any case failed (a 500, a hang, a traceback).

Usage: .venv/bin/python bench/fuzz.py [--ci 40] [--long 400] [--random]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITES = ["tests/unit/test_fuzz_inputs.py", "tests/api/test_fuzz_api.py"]
LINE = re.compile(r"^fuzz (.+?): (\d+) cases in ([\d.]+) s \((\d+) cases/s\)")


def run(examples: int, random: bool) -> tuple[dict[str, tuple[int, float, int]], str]:
    """suite -> (cases, seconds, cases/s as the suite measured it), and pytest's summary line."""
    env = dict(os.environ, KFAB_FUZZ_EXAMPLES=str(examples))
    if random:
        env["KFAB_FUZZ_RANDOM"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=7200)
    found = {m.group(1): (int(m.group(2)), float(m.group(3)), int(m.group(4)))
             for m in map(LINE.match, proc.stdout.splitlines()) if m}
    tail = [line for line in proc.stdout.splitlines() if " passed" in line or " failed" in line]
    return found, (tail[-1] if tail else proc.stdout[-300:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ci", type=int, default=40, help="examples per property in CI (default 40)")
    parser.add_argument("--long", type=int, default=400, help="examples per property on demand (default 400)")
    parser.add_argument("--random", action="store_true", help="new examples (KFAB_FUZZ_RANDOM=1)")
    args = parser.parse_args()
    results = {budget: run(budget, args.random) for budget in (args.ci, args.long)}
    suites = sorted({s for found, _ in results.values() for s in found})
    header = "".join(f" {f'{b}/property: cases':>22} {'s':>7} {'cases/s':>8}" for b in results)
    print(f"{'suite':<26}{header}")
    for suite in suites:
        cells = ""
        for found, _ in results.values():
            cases, seconds, rate = found.get(suite, (0, 0.0, 0))
            cells += f" {cases:>22} {seconds:>7.1f} {rate:>8}"
        print(f"{suite:<26}{cells}")
    totals = ""
    for found, _ in results.values():
        cases, seconds = sum(f[0] for f in found.values()), sum(f[1] for f in found.values())
        totals += f" {cases:>22} {seconds:>7.1f} {cases / seconds if seconds else 0:>8.0f}"
    print(f"{'all':<26}{totals}")
    for budget, (_, outcome) in results.items():
        print(f"{budget} examples per property: {outcome}")


if __name__ == "__main__":
    main()
