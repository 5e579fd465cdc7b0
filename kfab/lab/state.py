"""Where the lab keeps its files (operator key, known_hosts, locks) on the outer machine."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from kfab.lab.errors import run


def lab_root() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
    root = base / "kfab" / "lab"
    root.mkdir(parents=True, exist_ok=True)
    return root


def state_dir(network: str) -> Path:
    """One directory per lab, named after its Podman network: ~/.local/share/kfab/lab/<network>/."""
    path = lab_root() / network
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock between processes (released when the holder exits, even if killed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_ssh_key(private_key: Path) -> tuple[Path, bool]:
    """The operator's lab key (ed25519, no passphrase), generated once: (public key path, created)."""
    public_key = private_key.with_name(private_key.name + ".pub")
    if private_key.exists() and public_key.exists():
        return public_key, False
    private_key.parent.mkdir(parents=True, exist_ok=True)
    private_key.unlink(missing_ok=True)
    public_key.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kfab-lab-operator", "-f", str(private_key)])
    return public_key, True
