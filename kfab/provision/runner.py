"""The runner: one connection per host (SSH through Fabric, or local), hosts in parallel (forks) in
batches (`serial`), each host walking the play's tasks on its own (see hostplay.py); a failed host stops
there while the others go on."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

import paramiko

from kfab.provision.apply import Outcome, RoleFiles, resolve  # noqa: F401 - RoleFiles: preflight's import
from kfab.provision.context import RunVars
from kfab.provision.errors import HostUnreachable, ProvisionError
from kfab.provision.facts import gather
from kfab.provision.hostplay import HostPlay
from kfab.provision.inventory import Inventory
from kfab.provision.local import LocalConnection
from kfab.provision.output import HostStats, Output
from kfab.provision.playbook import Play
from kfab.provision.remote import RemoteHost
from kfab.provision.report import Report
from kfab.provision.roles import Task
from kfab.provision.ssh import connect, target_from_vars
from kfab.provision.variables import HostVars

LOCALHOST = ("localhost", "127.0.0.1", "::1")


@dataclass
class OnceClaim:
    """One run_once task in one batch: which host runs it, and its outcome for the others."""
    runner: str | None = None
    result: Future = field(default_factory=Future)


@dataclass
class Options:
    check: bool = False
    diff: bool = False
    verbose: int = 0
    forks: int = 10
    fail_fast: bool = False
    limit: str | None = None
    tags: tuple[str, ...] = ()
    become_password: str | None = None


class Runner:
    def __init__(self, inventory: Inventory, plays: list[Play], extra_vars: dict, options: Options,
                 output: Output):
        self.inventory = inventory
        self.plays = plays
        self.options = options
        self.output = output
        self.report = Report()
        self.vars = RunVars(inventory, extra_vars, check=options.check)
        self.hosts = inventory.select(options.limit) if options.limit else list(inventory.hosts)
        self.stats = {h: HostStats() for h in self.hosts}
        self.remotes: dict[str, RemoteHost] = {}
        self.connecting: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()
        self.dead: set[str] = set()
        self.stop = threading.Event()
        self.batch = 0
        self.once_results: dict[tuple, OnceClaim] = {}
        self.finished: set[str] = set()   # hosts through the current play (run_once looks past them)
        self.next_steps: list[str] = []   # what modules tell the user to do after a good run (admin kubeconfig)

    def run(self) -> int:
        try:
            for play in self.plays:
                if self.stop.is_set():
                    break
                hosts = [h for h in self.inventory.select(play.hosts) if h in self.stats and h not in self.dead]
                self.output.play(play.name, hosts)
                started = time.monotonic()
                self.vars.play_hosts, self.vars.dead = hosts, self.dead
                for batch in batches(hosts, play.serial):
                    if self.stop.is_set():
                        break
                    self.batch += 1
                    self.vars.batch = batch
                    self.finished = set()
                    self._run_batch(play, batch)
                    failed = [h for h in batch if h in self.dead]
                    limit = play.max_fail_percentage
                    if failed and (play.any_errors_fatal or (limit is not None
                                                            and 100.0 * len(failed) / len(batch) > limit)):
                        self.output.note(f"stopping: {len(failed)} of {len(batch)} hosts failed in this batch")
                        self.stop.set()
                self.report.play(play.name, time.monotonic() - started)
        finally:
            for remote in self.remotes.values():
                remote.close()
        failed = any(s.failed or s.unreachable for s in self.stats.values())
        if self.next_steps and not failed and not self.options.check:
            self.output.note("\n".join(dict.fromkeys(self.next_steps)))
        self.output.recap(self.stats)
        if any(s.unreachable for s in self.stats.values()):
            return 4
        return 2 if any(s.failed for s in self.stats.values()) else 0

    def _run_batch(self, play: Play, hosts: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, self.options.forks)) as pool:
            try:
                list(pool.map(lambda h: self._play_host(play, h), hosts))
            except KeyboardInterrupt:
                # Hosts finish the task they are in (never half a file) and stop there.
                self.stop.set()
                raise

    # ---- one host, one play --------------------------------------------------------------------------
    def _play_host(self, play: Play, host: str) -> None:
        try:
            self.remote(play, host)
            if not HostPlay(self, play, host).run():
                self.dead.add(host)
                self._maybe_stop()
        except HostUnreachable as exc:
            self.stats[host].unreachable += 1
            self.dead.add(host)
            self.output.result(host, "connect", "unreachable", str(exc))
            self._maybe_stop()
        except Exception as exc:  # a bug must not leave the other hosts' threads hanging
            self.stats[host].failed += 1
            self.dead.add(host)
            self.output.result(host, "internal error", "failed", f"{type(exc).__name__}: {exc}")
            self._maybe_stop()
        finally:
            with self.guard:
                self.finished.add(host)
            self.output.host_done(host)

    def count(self, host: str, status: str) -> None:
        """One task's result in the recap, counted as ansible-core's PLAY RECAP counts it: `ok` is every
        task that neither failed nor was skipped, so a changed task and an ignored failure count in it too."""
        stats = self.stats.setdefault(host, HostStats())
        setattr(stats, status, getattr(stats, status) + 1)
        if status in ("changed", "ignored"):
            stats.ok += 1

    def tagged(self, tags: frozenset) -> bool:
        """--tags: a task runs if it (or what encloses it) has one of the tags; `always` always runs,
        `never` only when asked for by name (Ansible's special tags)."""
        if not self.options.tags:
            return "never" not in tags
        return "always" in tags or bool(tags & set(self.options.tags))

    def once(self, play: Play, task: Task, host: str, run) -> tuple[Outcome, bool]:
        """run_once as ansible-core runs it: the first host of the batch runs the task, the others wait for and
        share its result (registered on every host, counted once). Hosts walk the play on their own here, so
        "first" is the first host still in the play: one that failed, or finished without reaching the task
        (a `when` on an include), hands it to the next. Only later hosts ever wait, so no two wait on each
        other."""
        key = (id(play), id(task), self.batch)
        with self.guard:
            claim = self.once_results.setdefault(key, OnceClaim())
        while True:
            with self.guard:
                if claim.runner is None and host == self._first_in_play():
                    claim.runner = host
                mine = claim.runner == host
            if mine:
                break
            try:
                return claim.result.result(timeout=0.2), False
            except TimeoutError:   # the first host may still be on its way, or may drop out
                continue
        try:
            outcome = run()
        except BaseException as exc:
            claim.result.set_exception(exc)
            raise
        claim.result.set_result(outcome)
        return outcome, True

    def _first_in_play(self) -> str | None:
        return next((h for h in self.vars.batch if h not in self.dead and h not in self.finished), None)

    def _maybe_stop(self) -> None:
        if self.options.fail_fast:
            self.stop.set()

    # ---- connections ---------------------------------------------------------------------------------
    def remote(self, play: Play | None, host: str) -> RemoteHost:
        with self.guard:
            lock = self.connecting.setdefault(host, threading.Lock())
        with lock:   # a delegated task may ask for a host another thread is connecting to
            if host not in self.remotes:
                self.remotes[host] = self._connect(play, host)
            return self.remotes[host]

    def remote_for(self, play: Play, host: str, task: Task, variables: HostVars, where: dict) -> RemoteHost:
        """The host a task's module runs on: its own, or `delegate_to` (an inventory host, or localhost)."""
        if task.delegate_to is None:
            return self.remotes[host]
        target = str(resolve(task.delegate_to, variables, where))
        if target in self.inventory.hosts or target not in LOCALHOST:
            if target not in self.inventory.hosts:
                raise ProvisionError(f"delegate_to: '{target}' is not a host of the inventory", **where)
            return self.remote(play, target)
        return self.remote(None, target)

    def _connect(self, play: Play | None, host: str) -> RemoteHost:
        self.output.task_start(host, "connecting")
        started = time.monotonic()
        implicit_local = host not in self.inventory.hosts
        variables = None if implicit_local else self.vars.host_vars(host, play)
        connector = None
        if implicit_local or str(variables.get("ansible_connection", "ssh")) == "local":
            conn = LocalConnection()
        else:
            try:
                target = target_from_vars(host, variables, self.inventory.base)
            except ProvisionError as exc:
                raise HostUnreachable(str(exc)) from None
            except (TypeError, ValueError) as exc:
                raise HostUnreachable(f"bad connection variable (ansible_port, kfab_ssh_timeout): {exc}") from None
            conn = connect(target)
            connector = partial(reconnect, target)
        password = self.options.become_password
        if password is None and variables is not None:
            password = variables.get("ansible_become_password", variables.get("ansible_become_pass"))
        remote = RemoteHost(host, conn, check=self.options.check,
                            become_password=None if password is None else str(password), connector=connector)
        self.output.task_start(host, "gathering facts")
        try:
            self.vars.facts[host] = gather(remote)
        except (paramiko.SSHException, OSError, EOFError, RuntimeError) as exc:
            remote.close()
            raise HostUnreachable(f"gathering facts failed: {exc}") from None
        self.report.connected(host, time.monotonic() - started)
        return remote



def reconnect(target, timeout: float | None):
    """The host reached again as at first (after a reboot), with the reboot module's connect_timeout if given."""
    return connect(replace(target, timeout=float(timeout)) if timeout else target)


def batches(hosts: list[str], serial: list) -> list[list[str]]:
    """Ansible's `serial`: batch sizes as numbers or percentages of the play's hosts; the last size
    repeats until every host had its turn. No serial: one batch of all hosts."""
    if not serial:
        return [hosts] if hosts else []
    result, start, i = [], 0, 0
    while start < len(hosts):
        size = str(serial[min(i, len(serial) - 1)]).strip()
        count = max(1, math.floor(len(hosts) * int(size[:-1]) / 100)) if size.endswith("%") else int(size)
        result.append(hosts[start:start + count])
        start += count
        i += 1
    return result
