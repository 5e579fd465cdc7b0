"""tgt (the userspace iSCSI target) through `tgtadm`: what targets exist, make one, remove one, grow its LUN.

tgtadm changes the running daemon only; each target is also written to `<conf_dir>/kfab-<pv name>.conf`
(tgt's own config format, read by `tgt-admin -e` when tgt starts) so targets survive a restart of tgt.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

Runner = Callable[[list[str]], str]


class TgtError(RuntimeError):
    pass


def run_tgtadm(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        shown = ["***" if before == "--password" else a for before, a in zip([""] + argv[:-1], argv)]
        raise TgtError(f"{' '.join(shown)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


@dataclass
class Target:
    tid: int
    iqn: str
    sessions: int = 0
    luns: dict[int, int] = field(default_factory=dict)   # LUN -> size in bytes (tgtadm rounds to MB)
    accounts: list[str] = field(default_factory=list)
    acl: list[str] = field(default_factory=list)


_TARGET = re.compile(r"^Target (\d+): (\S+)$")


def parse_targets(text: str) -> dict[str, Target]:
    """`tgtadm --lld iscsi --mode target --op show` -> {iqn: Target}."""
    targets: dict[str, Target] = {}
    current, section, lun = None, "", None
    for raw in text.splitlines():
        line = raw.strip()
        m = _TARGET.match(raw)
        if m:
            current = Target(int(m.group(1)), m.group(2))
            targets[current.iqn] = current
            section = ""
            continue
        if current is None or not line:
            continue
        if raw.startswith("    ") and not raw.startswith("     ") and line.endswith(":"):
            section = line[:-1]
        elif section == "I_T nexus information" and line.startswith("I_T nexus:"):
            current.sessions += 1
        elif section == "LUN information" and line.startswith("LUN:"):
            lun = int(line.split(":", 1)[1])
            current.luns[lun] = 0
        elif section == "LUN information" and line.startswith("Size:") and lun is not None:
            size = line.split(":", 1)[1].split(",")[0].split()
            current.luns[lun] = int(size[0]) * 1000 * 1000 if size and size[0].isdigit() else 0
        elif section == "Account information":
            current.accounts.append(line.split()[0])
        elif section == "ACL information":
            current.acl.append(line)
    return targets


def parse_accounts(text: str) -> list[str]:
    """`tgtadm --lld iscsi --mode account --op show` -> user names."""
    return [line.strip() for line in text.splitlines()[1:] if line.strip()]


def render_target_conf(iqn: str, backing_file: str, chap_user: str, chap_password: str,
                       initiators: list[str]) -> str:
    lines = ["# kfab provisioner: one volume. Removed with the volume (reclaimPolicy Delete).",
             f"<target {iqn}>", f"    backing-store {backing_file}",
             f"    incominguser {chap_user} {chap_password}"]
    lines += [f"    initiator-address {a}" for a in initiators]
    lines.append("</target>")
    return "\n".join(lines) + "\n"


class Tgt:
    def __init__(self, conf_dir: str, run: Runner = run_tgtadm):
        self.conf_dir = Path(conf_dir)
        self.run = run

    def _adm(self, *args: str) -> str:
        return self.run(["tgtadm", "--lld", "iscsi", *args])

    def targets(self) -> dict[str, Target]:
        return parse_targets(self._adm("--mode", "target", "--op", "show"))

    def conf_file(self, name: str) -> Path:
        return self.conf_dir / f"kfab-{name}.conf"

    def ensure_target(self, name: str, iqn: str, backing_file: str, chap_user: str, chap_password: str,
                      initiators: list[str]) -> Target:
        """Target `iqn` with LUN 1 on `backing_file`, CHAP user bound, ACL = `initiators`; each step only
        when missing, so a provisioner restarted half-way finishes the job."""
        self._write_conf(name, render_target_conf(iqn, backing_file, chap_user, chap_password, initiators))
        targets = self.targets()
        target = targets.get(iqn)
        if target is None:
            tid = max((t.tid for t in targets.values()), default=0) + 1
            self._adm("--mode", "target", "--op", "new", "--tid", str(tid), "--targetname", iqn)
            target = Target(tid, iqn)
        if 1 not in target.luns:
            self._adm("--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", "1",
                      "--backing-store", backing_file)
        if chap_user not in parse_accounts(self._adm("--mode", "account", "--op", "show")):
            self._adm("--mode", "account", "--op", "new", "--user", chap_user, "--password", chap_password)
        if chap_user not in target.accounts:
            self._adm("--mode", "account", "--op", "bind", "--tid", str(target.tid), "--user", chap_user)
        for address in initiators:
            if address not in target.acl:
                self._adm("--mode", "target", "--op", "bind", "--tid", str(target.tid),
                          "--initiator-address", address)
        return self.targets()[iqn]

    def delete_target(self, name: str, iqn: str) -> None:
        target = self.targets().get(iqn)
        if target is not None:
            if target.sessions:
                raise TgtError(f"target {iqn} still has {target.sessions} session(s) logged in")
            self._adm("--mode", "target", "--op", "delete", "--tid", str(target.tid))
        self.conf_file(name).unlink(missing_ok=True)

    def reload_lun(self, iqn: str, backing_file: str) -> None:
        """tgt reads a backing file's size when the LUN is added: re-add LUN 1 after the file grew."""
        target = self.targets().get(iqn)
        if target is None:
            raise TgtError(f"target {iqn} does not exist")
        if target.sessions:
            raise TgtError(f"target {iqn} has {target.sessions} session(s): grow it while no node uses it")
        self._adm("--mode", "logicalunit", "--op", "delete", "--tid", str(target.tid), "--lun", "1")
        self._adm("--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", "1",
                  "--backing-store", backing_file)

    def _write_conf(self, name: str, text: str) -> None:
        path = self.conf_file(name)
        if path.exists() and path.read_text() == text:
            return
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # it holds the CHAP secret
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
