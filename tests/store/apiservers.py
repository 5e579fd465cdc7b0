"""Start and stop `kfab apiserver` processes over a store URL (HA tests and bench/api.py).

Several API servers of one cluster share one PKI, as they would on real control-plane hosts: the first
one creates it, the others start from a copy, so one admin kubeconfig is trusted by all of them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.api.conftest import REPO, STARTUP_DEADLINE, KfabServer, _ready, stop_server  # noqa: F401
from kfab.pki.kubeconfig import server_url_of


def start_apiserver(data_dir: Path, store_url: str, pki_from: Path | None = None,
                    command: str = "apiserver", repo: Path = REPO) -> tuple[subprocess.Popen, KfabServer]:
    """`kfab apiserver --store URL` on a free loopback port (command="server": `kfab server`, SQLite).

    repo: the checkout whose kfab runs (a bench compares against an older commit's worktree)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if pki_from is not None:
        shutil.copytree(pki_from / "pki", data_dir / "pki", dirs_exist_ok=True)
    log = data_dir / "server.log"
    kubeconfig = data_dir / "admin.kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    store = ["--store", store_url] if command == "apiserver" else []
    proc = subprocess.Popen([sys.executable, "-m", "kfab", command, *store, "--data-dir", str(data_dir),
                             "--port", "0", "--bind", "127.0.0.1"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=repo)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kfab {command} exited with {proc.returncode}:\n{log.read_text()}")
        url = server_url_of(kubeconfig) if kubeconfig.exists() else None
        if url and _ready(url, data_dir / "pki" / "ca.crt"):
            return proc, KfabServer(url, kubeconfig, data_dir, proc.pid, log)
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"kfab {command} not ready after {STARTUP_DEADLINE}s:\n{log.read_text()}")
