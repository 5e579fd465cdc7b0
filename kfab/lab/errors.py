"""The one error type the lab raises: a message a user can act on, printed as one line."""

from __future__ import annotations

import subprocess


class LabError(Exception):
    """Something the lab could not do; the message names the file, host or command involved."""


def run(cmd: list[str], *, check: bool = True, input: bytes | None = None,
        timeout: float | None = 120) -> subprocess.CompletedProcess:
    """Run a host command (podman, iptables, ...), turning a failure into a LabError with its stderr."""
    try:
        proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed (run scripts/setup.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(cmd)}` did not finish within {timeout} s") from exc
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed: {err[-1] if err else f'exit {proc.returncode}'}")
    return proc
