"""One long-lived shell per host, inside the host's one SSH connection.

Each SSH "exec" costs a new session on the server (fork, PAM session, login bookkeeping): ~45 ms on a
lab host, ~100 ms on a TCG VM, and a run issues a dozen reads per host per role. So commands are
written to the stdin of one `/bin/sh` and each is followed by a marker carrying its exit code; the
command itself runs in its own `sh -c` with stdin from /dev/null, so it cannot read or end the shell."""

from __future__ import annotations

import time
import uuid

import paramiko

from kfab.provision.modules.base import CommandResult, q


class ShellClosed(paramiko.SSHException):
    pass


class RemoteShell:
    def __init__(self, transport: paramiko.Transport):
        self.transport = transport
        self.channel: paramiko.Channel | None = None

    def _open(self, timeout: float | None = None) -> paramiko.Channel:
        channel = self.transport.open_session(timeout=timeout)
        channel.exec_command("/bin/sh")
        return channel

    def run(self, cmd: str, stdin: str | None = None, timeout: float | None = None) -> CommandResult:
        """`stdin` (a become password) goes in a here-document read by the long-lived shell, so it is never
        part of any process's command line on the host. No answer within `timeout` seconds: ShellClosed (the
        reboot module's checks, against a host going down without closing the connection)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.channel is None or self.channel.closed or self.channel.exit_status_ready():
            self.channel = self._open(timeout)
        marker = f"__kfab_{uuid.uuid4().hex}__"
        feed = "</dev/null" if stdin is None else f"<<'{marker}_IN'"
        body = "" if stdin is None else f"{stdin}\n{marker}_IN\n"
        # printf's leading \n keeps the marker on a line of its own; it is cut off with the marker.
        self.channel.sendall((f"/bin/sh -c {q(cmd)} {feed}; printf '\\n{marker} %d\\n' $?; "
                              f"printf '\\n{marker}\\n' >&2\n{body}").encode())
        out, err = bytearray(), bytearray()
        out_end, err_end = f"\n{marker} ".encode(), f"\n{marker}\n".encode()
        delay = 0.0005
        while True:
            progressed = False
            while self.channel.recv_ready():
                out += self.channel.recv(65536)
                progressed = True
            while self.channel.recv_stderr_ready():
                err += self.channel.recv_stderr(65536)
                progressed = True
            done_out = out.find(out_end)
            if done_out >= 0 and out.endswith(b"\n") and err.find(err_end) >= 0:
                break
            if not progressed:
                if self.channel.exit_status_ready() and not self.channel.recv_ready():
                    self.channel = None
                    raise ShellClosed("the remote shell ended unexpectedly")
                if deadline is not None and time.monotonic() > deadline:
                    self.close()
                    raise ShellClosed(f"no answer within {timeout:g}s")
                time.sleep(delay)
                delay = min(delay * 2, 0.02)  # short commands answer in ~1 ms; long ones need no busy loop
            else:
                delay = 0.0005
        rc = int(out[done_out + len(out_end):].strip() or 1)
        stdout = out[:done_out].decode(errors="replace")
        stderr = err[:err.find(err_end)].decode(errors="replace")
        return CommandResult(rc, stdout, stderr)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
