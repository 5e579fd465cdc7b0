"""What the control-plane benchmarks share (bench/control.py, bench/scheduler.py): start `kfab` processes and
stop them by PID, a `kfab server` on a fresh data dir, waiting on a condition, and waiting for N Ready nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kfab.client import Client, rt_of

REPO = Path(__file__).resolve().parents[1]
NODE, NAMESPACE = rt_of("Node"), rt_of("Namespace")


def start(args: list[str], log: Path, repo: Path = REPO) -> subprocess.Popen:
    """`kfab ARGS` of the checkout `repo` (a baseline's worktree, or this one)."""
    return subprocess.Popen([sys.executable, "-m", "kfab", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=repo)


@contextlib.contextmanager
def worktree(rev: str):
    """A detached checkout of rev in /tmp, removed afterwards: the baseline's code, run from its own tree."""
    path = Path(tempfile.mkdtemp(prefix="kfab-bench-ref-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(data: Path, *extra: str, repo: Path = REPO) -> tuple[subprocess.Popen, Path]:
    """`kfab server` on `data`; returns once its admin kubeconfig exists (RuntimeError with its log if not)."""
    proc = start(["server", "--data-dir", str(data), "--port", "0", *extra], data / "server.log", repo)
    kubeconfig = data / "admin.kubeconfig"
    deadline = time.monotonic() + 60
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError((data / "server.log").read_text())
        time.sleep(0.1)
    return proc, kubeconfig


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s")


async def ready_nodes(c: Client, count: int, timeout: float = 180) -> None:
    async def check():
        nodes = (await c.list(NODE))["items"]
        return sum(1 for n in nodes if any(x.get("type") == "Ready" and x.get("status") == "True"
                                           for x in (n.get("status") or {}).get("conditions") or [])) >= count
    await wait_until(check, timeout, f"{count} nodes Ready", 0.5)


async def run_measurements(measurements: dict, args, kubeconfig: Path, nodes: int) -> dict:
    """Once `nodes` nodes are Ready: each chosen measurement (args.only, else all) in a namespace of its own,
    bench-<name>, its result printed as soon as it is there."""
    results = {}
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-bench") as client:
        await ready_nodes(client, nodes, 120)
        for name in args.only or measurements:
            ns = f"bench-{name}"
            await client.create(NAMESPACE, {"metadata": {"name": ns}})
            results[name] = await measurements[name](client, ns, args)
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    return results
