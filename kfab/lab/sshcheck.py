"""Is a lab host answering SSH? A banner check while it boots, then a real login with the lab key."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from kfab.lab.errors import LabError


def ssh_banner(ip: str, port: int = 22, timeout: float = 1.0) -> str | None:
    """The server's SSH identification line, or None when nothing SSH answers yet."""
    try:
        # A host whose network is not up yet is retried soon; a long `timeout` only waits for the banner.
        with socket.create_connection((ip, port), timeout=min(timeout, 2.0)) as sock:
            sock.settimeout(timeout)
            data = sock.recv(256)
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line if line.startswith("SSH-") else None


def wait_for_banner(name: str, ip: str, deadline: float, timeout: float = 1.0) -> str:
    """Poll until SSH answers. A slow host (an emulated VM) needs a `timeout` long enough for its banner:
    every connection given up on costs it a whole forked sshd, which only slows it further."""
    while True:
        banner = ssh_banner(ip, timeout=timeout)
        if banner:
            return banner
        if time.monotonic() > deadline:
            raise LabError(f"lab host {name} ({ip}): SSH did not answer in time (`kfab lab status` shows what runs)")
        time.sleep(0.1)


def ssh_command(ip: str, key_file: Path, known_hosts: Path, *, strict: str = "yes",
                batch: bool = True, connect_timeout: float = 5) -> list[str]:
    """The ssh command line for a lab host; `strict` is OpenSSH's StrictHostKeyChecking.

    `connect_timeout` also bounds the banner exchange: an emulated VM on a loaded machine needs more."""
    cmd = ["ssh", "-i", str(key_file), "-o", "IdentitiesOnly=yes",
           "-o", f"UserKnownHostsFile={known_hosts}", "-o", f"StrictHostKeyChecking={strict}",
           "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           "-o", f"ConnectTimeout={int(connect_timeout)}"]
    if batch:
        cmd += ["-o", "BatchMode=yes"]
    return cmd + [f"root@{ip}"]


def login_works(ip: str, key_file: Path, known_hosts: Path, timeout: float = 10) -> tuple[bool, str]:
    """A full SSH login with host-key verification against the lab's known_hosts; (ok, error)."""
    try:
        cmd = ssh_command(ip, key_file, known_hosts, connect_timeout=max(5, timeout / 2)) + ["true"]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    err = proc.stderr.decode(errors="replace").strip()
    return proc.returncode == 0, err.splitlines()[-1] if err else ""
