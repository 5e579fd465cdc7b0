"""A lab cut off from everything outside its own network (issue 18's offline installs): iptables rules on this
machine, each tagged with a comment, whose packet counts say whether a host tried to get out."""

from __future__ import annotations

import subprocess

TAG = "kfab-lab-offline"


def lab_bridge(network: str) -> str:
    """The Linux bridge of a lab's Podman network (exists while a host is attached)."""
    return subprocess.run(["podman", "network", "inspect", network, "--format", "{{.NetworkInterface}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def remove_stale() -> None:
    """Rules a killed run left behind (on a bridge that may be gone by now): every rule tagged TAG."""
    for chain in ("FORWARD", "INPUT"):
        out = subprocess.run(["iptables", "-w", "-S", chain], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith(f"-A {chain} ") and f"{TAG}:" in line:
                args = [a.strip('"') for a in line.split()[2:]]
                subprocess.run(["iptables", "-w", "-D", chain, *args], check=False)


class Cutoff:
    """iptables rules on this machine that leave the lab's hosts only their own network and this machine's
    bundle port; each rule carries a comment naming it, and its packet count says whether anyone tried."""

    def __init__(self, bridge: str):
        self.rules = [
            ("FORWARD", "mirror", ["-i", bridge, "!", "-o", bridge, "-p", "tcp", "-m", "multiport",
                                   "--dports", "80,443", "-j", "DROP"]),
            ("FORWARD", "outside", ["-i", bridge, "!", "-o", bridge, "-j", "DROP"]),
            ("INPUT", "cache", ["-i", bridge, "-p", "tcp", "--dport", "3142", "-j", "DROP"]),
        ]

    def _args(self, name: str, spec: list[str]) -> list[str]:
        return [*spec[:-2], "-m", "comment", "--comment", f"{TAG}:{name}", *spec[-2:]]

    def __enter__(self) -> "Cutoff":
        remove_stale()
        for chain, name, spec in reversed(self.rules):   # inserted at the top: the mirror rule ends first
            subprocess.run(["iptables", "-w", "-I", chain, "1", *self._args(name, spec)], check=True)
        return self

    def __exit__(self, *exc) -> None:
        for chain, name, spec in self.rules:
            while subprocess.run(["iptables", "-w", "-D", chain, *self._args(name, spec)],
                                 capture_output=True).returncode == 0:
                pass

    def packets(self) -> dict[str, int]:
        counts = {}
        for chain in ("FORWARD", "INPUT"):
            out = subprocess.run(["iptables", "-w", "-L", chain, "-v", "-n", "-x"], capture_output=True, text=True,
                                 check=True).stdout
            for line in out.splitlines():
                for _, name, _ in self.rules:
                    if f"{TAG}:{name} " in line + " ":
                        counts[name] = int(line.split()[0])
        return counts

    def zero(self) -> None:
        """Count from 0 again."""
        for chain in ("FORWARD", "INPUT"):
            out = subprocess.run(["iptables", "-w", "-L", chain, "-n", "--line-numbers"], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                if f"/* {TAG}:" in line:
                    subprocess.run(["iptables", "-w", "-Z", chain, line.split()[0]], check=True)
