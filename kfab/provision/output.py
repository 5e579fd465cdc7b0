"""What a run prints: live progress on a TTY (which host is on which task), plain lines otherwise,
diffs with --diff, and the recap table per host."""

from __future__ import annotations

import difflib
import shutil
import sys
import threading
from dataclasses import dataclass, fields

from kfab.provision.secrets import Masker

COLORS = {"ok": "32", "changed": "33", "failed": "31", "unreachable": "31", "skipped": "36", "rescued": "35",
          "ignored": "35"}


@dataclass
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0    # failed in a block whose rescue then ran (not counted as failed, as Ansible)
    ignored: int = 0    # failed with ignore_errors


class Output:
    def __init__(self, stream=None, verbose: int = 0, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self.lock = threading.Lock()
        self.current: dict[str, str] = {}
        self._status_shown = False
        self.masker = Masker()  # secret values seen in this run: never printed

    # ---- low level ---------------------------------------------------------------------------------
    def _color(self, status: str, text: str) -> str:
        return f"\033[{COLORS[status]}m{text}\033[0m" if self.tty and status in COLORS else text

    def _write(self, text: str) -> None:
        with self.lock:
            self._clear_status()
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self._draw_status()
            self.stream.flush()

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self.stream.write("\r\033[K")
            self._status_shown = False

    def _draw_status(self) -> None:
        if not self.tty or not self.current:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = " | ".join(f"{h}: {t}" for h, t in sorted(self.current.items()))
        self.stream.write(line[:width])
        self._status_shown = True

    # ---- events ------------------------------------------------------------------------------------
    def play(self, name: str, hosts: list[str]) -> None:
        self._write(f"PLAY [{name}] on {', '.join(hosts) or 'no hosts'}")

    def task_start(self, host: str, label: str) -> None:
        if not self.tty:
            return
        with self.lock:
            self.current[host] = label
            self._clear_status()
            self._draw_status()
            self.stream.flush()

    def host_done(self, host: str) -> None:
        with self.lock:
            self.current.pop(host, None)
            self._clear_status()
            self._draw_status()
            self.stream.flush()

    def result(self, host: str, label: str, status: str, message: str | None = None,
               item=None, diffs=(), commands=()) -> None:
        # On a TTY the live line shows progress, so plain `ok` lines are only printed with -v.
        quiet = status == "ok" and self.tty and not self.verbose and not diffs
        text = f"{self._color(status, status):>8} {host}: {label}"
        if item is not None:
            text += f" (item={item_label(item)})"
        if message:
            text += f": {message}"
        lines = [] if quiet else [self.masker.text(text)]
        for d in diffs:
            lines.append(diff_text(d, self.masker).rstrip("\n"))
        if self.verbose:
            for cmd, result in commands:
                lines.append(f"         $ {self.masker.text(cmd)}"
                             + (f"  (rc={result.rc})" if result else "  (check mode: not run)"))
                if result and self.verbose > 1:
                    for out in (result.stdout, result.stderr):
                        lines += [f"           {ln}" for ln in self.masker.text(out).rstrip().splitlines()]
        if lines:
            self._write("\n".join(lines))

    def note(self, text: str) -> None:
        self._write("\n" + self.masker.text(text))

    def error(self, line: str) -> None:
        self._write(f"ERROR: {self.masker.text(line)}")

    def recap(self, stats: dict[str, HostStats]) -> None:
        names = [f.name for f in fields(HostStats)]
        width = max([len(h) for h in stats] + [4])
        rows = [f"{'HOST':<{width}}  " + "  ".join(f"{n.upper():>11}" for n in names)]
        for host, s in stats.items():
            cells = []
            for n in names:
                value = getattr(s, n)
                cell = f"{value:>11}"
                cells.append(self._color(n, cell) if value and n != "ok" else cell)
            rows.append(f"{host:<{width}}  " + "  ".join(cells))
        self._write("\nRECAP\n" + "\n".join(rows))


def item_label(item) -> str:
    if isinstance(item, dict):
        for key in ("key", "name", "path", "dest"):
            if key in item:
                return str(item[key])
    text = str(item)
    return text if len(text) <= 60 else text[:57] + "..."


def diff_text(d, masker: Masker) -> str:
    """A diff as printed: already masked (kfab.provision.secrets.MaskedDiff), else masked here."""
    return getattr(d, "text", None) or masker.diff(d.path, d.before, d.after)


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        fromfile=f"before: {path}", tofile=f"after: {path}")) or ""
