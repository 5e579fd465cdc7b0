"""A log file per `kfab up` / `kfab plan` (Ansible's log_path, always on): every result line, `ok` ones too,
diffs and the recap, in $XDG_STATE_HOME/kfab/runs (default ~/.local/state/kfab/runs), named by start time.
The newest KEEP logs are kept."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

KEEP = 100


def runs_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "kfab" / "runs"


def open_run_log(command: str, inventory: str, playbook: str) -> TextIO | None:
    """The new run's log file, opened, with a header line; None when it cannot be written (the run goes on)."""
    directory = runs_dir()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for old in sorted(directory.glob("*.log"))[:-KEEP + 1]:
            old.unlink(missing_ok=True)
        log = open(directory / f"{stamp}-{os.getpid()}-{command}.log", "w", encoding="utf-8")
    except OSError:
        return None
    # Not the whole command line: -e may carry secrets.
    log.write(f"kfab {command} -i {inventory} {playbook}: {stamp}\n")
    return log
