"""A private Podman API service on a temporary socket and labelled containers, for checks of the node agent's
Podman calls on this machine (no lab hosts): started and removed by PID and by name."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from kfab.node.runtime import LABEL_CONTAINER, LABEL_NAME, LABEL_NAMESPACE, LABEL_UID
from tests.api.conftest import stop_server


def start_podman_service(socket: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not socket.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the Podman API service did not start")
        time.sleep(0.1)
    return proc


def stop_podman_service(proc: subprocess.Popen) -> None:
    stop_server(proc)  # SIGTERM, SIGKILL if it lingers: as every process a test starts


def run_pod_container(name: str, image: str, *command: str, namespace: str = "test", container: str = "main") -> str:
    """A container labelled as the node agent labels a pod's container (pod `name` in `namespace`)."""
    subprocess.run(["podman", "run", "-d", "--name", name, "--label", f"{LABEL_CONTAINER}={container}",
                    "--label", f"{LABEL_NAME}={name}", "--label", f"{LABEL_NAMESPACE}={namespace}",
                    "--label", f"{LABEL_UID}={name}", image, *command], check=True, capture_output=True)
    return name


def remove_containers(names: list[str]) -> None:
    if names:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True)
