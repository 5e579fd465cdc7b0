"""A throwaway network namespace for tests and benchmarks that program routes or nftables: this machine's
own network is never touched. Commands run inside with `prefix` (nsenter into a holder process)."""

from __future__ import annotations

import os
import subprocess


class NetNS:
    def __init__(self):
        self.holder: subprocess.Popen | None = None
        self.prefix: list[str] = []

    def __enter__(self) -> "NetNS":
        # The holder prints only once it is inside the new namespace: entering it before that (right after
        # Popen returns) would enter this machine's namespace instead.
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "echo ready; exec sleep 3600"],
                                       stdout=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline().strip()
        mine = os.readlink("/proc/self/ns/net")
        try:
            theirs = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        except OSError:
            theirs = mine
        if line != "ready" or theirs == mine:
            self.__exit__()
            raise OSError("could not create a network namespace (unshare -n)")
        self.prefix = ["nsenter", "-t", str(self.holder.pid), "-n"]
        return self

    def run(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, "sh", "-c", cmd], capture_output=True, text=True, check=check)

    def __exit__(self, *exc) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()
