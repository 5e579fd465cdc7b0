"""Progress of a run that people can read: on a terminal, a live table (rich) of the play — its number of
all, hosts done, elapsed time — and a bar per host with tasks done of about how many, the task it is on and
its time; every result line scrolls above it. Not on a terminal: no live part; Output prints a plain line per
play and per host when it finishes its play (tasks, changed, failed, seconds)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from kfab.provision.playbook import Play
from kfab.provision.roles import walk_tasks

NOT_TASKS = ("connecting", "gathering facts")   # what the runner shows before a host's first task


def tasks_of(play: Play) -> int:
    """About how many tasks a host of the play starts (every task of its roles; tags and skipped includes make
    the real number smaller, loops do not change it: a loop is one task)."""
    return sum(1 for ref in play.roles for _ in walk_tasks(ref.role.tasks))


class LiveProgress:
    """The terminal's live part. Thread-safe (rich's Progress holds its own lock)."""

    def __init__(self, stream):
        self.console = Console(file=stream, force_terminal=True, highlight=False, soft_wrap=True)
        self.progress = Progress(TextColumn("{task.fields[host]}", style="bold"), BarColumn(bar_width=24),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[label]}"),
                                 console=self.console, refresh_per_second=8, transient=True)
        self.hosts: dict[str, TaskID] = {}
        self.play_task: TaskID | None = None
        self.started = False

    def print(self, text: str) -> None:
        """A result line (with Output's ANSI colours) above the live part."""
        self.console.print(Text.from_ansi(text), soft_wrap=True)

    def play(self, title: str, hosts: list[str], tasks: int) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        for task in list(self.progress.task_ids):
            self.progress.remove_task(task)
        self.hosts = {}
        self.play_task = self.progress.add_task("", host=title, label="hosts done", total=max(1, len(hosts)),
                                                completed=0)
        for host in hosts:
            self.hosts[host] = self.progress.add_task("", host=f"  {host}", label="waiting", total=max(1, tasks))

    def task(self, host: str, label: str, done: int) -> None:
        task = self.hosts.get(host)
        if task is None:
            return
        total = self.progress.tasks[self._index(task)].total or 1
        self.progress.update(task, completed=done, total=max(total, done), label=label)

    def host_done(self, host: str, summary: str) -> None:
        task = self.hosts.get(host)
        if task is None:
            return
        self.progress.update(task, total=max(1, self.progress.tasks[self._index(task)].completed), label=summary)
        self.progress.stop_task(task)
        if self.play_task is not None:
            self.progress.advance(self.play_task)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False

    def _index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task)


class HostTally:
    """One host's tasks in the current play: how many started, how they ended, since when."""

    def __init__(self):
        self.started: float | None = None   # its first step (hosts of a later serial batch wait before it)
        self.tasks = 0
        self.changed = 0
        self.failed = 0

    def summary(self) -> str:
        parts = [f"{self.tasks} task{'s' if self.tasks != 1 else ''}", f"{self.changed} changed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts) + f" in {time.monotonic() - (self.started or time.monotonic()):.1f} s"

    def step(self, counted: bool) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.tasks += counted
