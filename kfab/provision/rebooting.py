"""The reboot module's waiting, as ansible.builtin.reboot's action plugin does it on the controller: note the
boot id, run the reboot command, then (after post_reboot_delay) retry — with Ansible's backoff, 1, 2, 4, 8
then 12 s plus a random fraction — until the boot id differs, then until the test command succeeds, each
within reboot_timeout seconds. The old SSH connection dies with the host, so every retry after a lost
connection opens a new one (connect_timeout); the tasks after this one run over the last of them."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import paramiko

from kfab.provision.errors import HostUnreachable
from kfab.provision.modules.base import Reboot, q

# What a host going down or not yet up raises: the shell or transport closing, a refused or timed-out connect.
CONNECTION_LOST = (paramiko.SSHException, EOFError, OSError, HostUnreachable)
MAX_FAIL_SLEEP = 12
ACTION = "reboot"


class TimedOut(Exception):
    pass


def reboot(remote, change: Reboot, sleep: Callable[[float], None] = time.sleep) -> tuple[bool, dict, str | None]:
    """(failed, result, message): result has Ansible's `rebooted` and `elapsed` (whole seconds since the
    reboot command returned)."""
    if remote.is_local:
        return True, {"rebooted": False, "elapsed": 0}, \
            f"Running {ACTION} with local connection would reboot the control node."
    before = remote.run(change.boot_time_command)
    if before.rc != 0:
        return True, {"rebooted": False}, _boot_time_failed(before)
    binary = change.binary
    if not binary.startswith("/"):
        found = remote.run("for d in " + " ".join(q(p) for p in change.search_paths) +
                           f"; do [ -e \"$d\"/{q(binary)} ] && {{ echo \"$d\"/{q(binary)}; exit 0; }}; done; exit 1")
        if found.rc != 0 or not found.stdout.strip():
            return True, {"rebooted": False}, \
                f'Unable to find command "{binary}" in search paths: {change.search_paths}'
        binary = found.stdout.strip().splitlines()[0]
    try:
        result = remote.run(f"{binary} {change.arguments}".rstrip())
        rc, stdout, stderr = result.rc, result.stdout, result.stderr
    except CONNECTION_LOST:
        rc, stdout, stderr = 0, "", ""     # the host went down before answering: that is the reboot
    start = time.monotonic()
    if rc != 0:
        return True, {"rebooted": False, "elapsed": 0}, \
            f"Reboot command failed. Error was: '{stdout.strip()}, {stderr.strip()}'"
    # The connection the reboot command ran on is not trusted again: the first check reconnects.
    remote.mark_lost()
    if change.post_reboot_delay:
        sleep(change.post_reboot_delay)
    previous = before.stdout.strip()

    def boot_time_changed() -> None:
        now = _on_live_connection(remote, change, change.boot_time_command)
        if now.rc != 0:
            raise RuntimeError(_boot_time_failed(now))
        if not now.stdout.strip() or now.stdout.strip() == previous:
            raise ValueError("boot time has not changed")

    def test_command_passes() -> None:
        done = _on_live_connection(remote, change, change.test_command)
        if done.rc != 0:
            raise RuntimeError(f"Test command failed: {done.stderr} {done.stdout}")

    try:
        _until(boot_time_changed, change.reboot_timeout, "last boot time check", remote, sleep)
        _until(test_command_passes, change.reboot_timeout, "post-reboot test command", remote, sleep)
    except TimedOut as exc:
        return True, {"rebooted": True, "elapsed": int(time.monotonic() - start)}, str(exc)
    return False, {"rebooted": True, "elapsed": int(time.monotonic() - start)}, None


def _on_live_connection(remote, change: Reboot, cmd: str):
    """`cmd` on the host, over a new connection if the last one was lost; a command that hangs (a host
    going down mid-answer) counts as a lost connection after connect_timeout (or 30 s)."""
    if remote.lost:
        remote.reconnect(change.connect_timeout)
    try:
        return remote.run(cmd, timeout=change.connect_timeout or 30)
    except CONNECTION_LOST:
        remote.mark_lost()
        raise


def _until(action: Callable[[], None], timeout: int, what: str, remote, sleep) -> None:
    deadline = time.monotonic() + timeout
    failures = 0
    while time.monotonic() < deadline:
        try:
            action()
            return
        except (*CONNECTION_LOST, ValueError, RuntimeError):
            pass
        pause = min(2 ** failures, MAX_FAIL_SLEEP) + random.randint(0, 1000) / 1000
        failures += 1
        sleep(max(0.0, min(pause, deadline - time.monotonic())))
    raise TimedOut(f"Timed out waiting for {what} (timeout={timeout})")


def _boot_time_failed(result) -> str:
    return (f"{ACTION}: failed to get host boot time info, rc: {result.rc}, stdout: {result.stdout}, "
            f"stderr: {result.stderr}")
