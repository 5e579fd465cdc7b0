"""The local connection (`ansible_connection: local`, and `delegate_to: localhost`): commands run on the
machine running kfab, in a subprocess, with the same shape of results as over SSH."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

from kfab.provision.modules.base import CommandResult


class LocalConnection:
    def __init__(self):
        self.user = getpass.getuser()

    def close(self) -> None:
        pass

    def upload(self, data: bytes, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


class LocalShell:
    def run(self, cmd: str, stdin: str | None = None, timeout: float | None = None) -> CommandResult:
        proc = subprocess.run(["/bin/sh", "-c", cmd], input=(stdin or "").encode(), capture_output=True,
                              cwd=Path.home(), timeout=timeout)
        return CommandResult(proc.returncode, proc.stdout.decode(errors="replace"),
                             proc.stderr.decode(errors="replace"))

    def close(self) -> None:
        pass
