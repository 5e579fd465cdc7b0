"""What a run prints: live progress on a TTY (kfab.provision.progress: play of plays, per host tasks done,
the task it is on, elapsed time), plain lines otherwise (with a line per host as it finishes a play), diffs
with --diff, and the recap table per host."""

from __future__ import annotations

import difflib
import re
import sys
import threading
from dataclasses import dataclass, fields

from kfab.provision.progress import NOT_TASKS, HostTally, LiveProgress
from kfab.provision.secrets import Masker

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLORS = {"ok": "32", "changed": "33", "failed": "31", "unreachable": "31", "skipped": "36", "rescued": "35",
          "ignored": "35"}


@dataclass
class HostStats:
    ok: int = 0         # as Ansible's recap: every task that did not fail or skip, changed ones included
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0    # failed in a block whose rescue then ran (not counted as failed, as Ansible)
    ignored: int = 0    # failed with ignore_errors


class Output:
    """`play_tasks`: about how many tasks each play has per host (progress.tasks_of), for the counts."""

    def __init__(self, stream=None, verbose: int = 0, tty: bool | None = None, play_tasks: list[int] | None = None,
                 log=None):
        self.stream = stream or sys.stdout
        self.log = log          # the run log file: every line, `ok` ones too, without colours
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self.lock = threading.Lock()
        self.masker = Masker()  # secret values seen in this run: never printed
        self.live = LiveProgress(self.stream) if self.tty else None
        self.play_tasks = list(play_tasks or [])
        self.plays_started = 0
        self.tally: dict[str, HostTally] = {}

    # ---- low level ---------------------------------------------------------------------------------
    def _color(self, status: str, text: str) -> str:
        return f"\033[{COLORS[status]}m{text}\033[0m" if self.tty and status in COLORS else text

    def _write(self, text: str) -> None:
        with self.lock:
            self._log(text)
            if self.live is not None:
                self.live.print(text.rstrip("\n"))
                return
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self.stream.flush()

    def _log(self, text: str) -> None:
        if self.log is not None:
            self.log.write(ANSI.sub("", text).rstrip("\n") + "\n")
            self.log.flush()

    # ---- events ------------------------------------------------------------------------------------
    def play(self, name: str, hosts: list[str]) -> None:
        self.plays_started += 1
        count = f" (play {self.plays_started} of {len(self.play_tasks)})" if self.play_tasks else ""
        self._write(f"PLAY [{name}] on {', '.join(hosts) or 'no hosts'}{count}")
        tasks = self.play_tasks[self.plays_started - 1] if self.plays_started <= len(self.play_tasks) else 0
        with self.lock:
            self.tally = {h: HostTally() for h in hosts}
            if self.live is not None:
                title = f"PLAY {self.plays_started}/{len(self.play_tasks) or '?'} {name}"
                self.live.play(title, hosts, tasks)

    def task_start(self, host: str, label: str) -> None:
        with self.lock:
            tally = self.tally.setdefault(host, HostTally())
            tally.step(counted=label not in NOT_TASKS)
            if self.live is not None:
                self.live.task(host, label, tally.tasks)

    def host_done(self, host: str) -> None:
        with self.lock:
            tally = self.tally.pop(host, None)
            if tally is None or not tally.tasks:
                return
            if self.live is not None:
                self.live.host_done(host, tally.summary())
        # The live bar of a play goes with the next play: a line stays for each host.
        self._write(f"    done {host}: {tally.summary()}")

    def result(self, host: str, label: str, status: str, message: str | None = None,
               item=None, diffs=(), commands=()) -> None:
        # On a TTY the live line shows progress, so plain `ok` lines are only printed with -v.
        quiet = status == "ok" and self.tty and not self.verbose and not diffs
        text = f"{self._color(status, status):>8} {host}: {label}"
        if item is not None:
            text += f" (item={item_label(item)})"
        if message:
            text += f": {message}"
        with self.lock:
            tally = self.tally.get(host)
            if tally is not None and status in ("changed", "failed"):
                setattr(tally, status, getattr(tally, status) + 1)
        if quiet:
            with self.lock:
                self._log(self.masker.text(text))
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
        self.close()
        self._write("\nRECAP\n" + "\n".join(rows))

    def close(self) -> None:
        """End the live part (and give the terminal its cursor back); plain lines from here on."""
        if self.live is not None:
            self.live.stop()


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
