"""The host as task modules see it: reads of its state over the host's one Fabric connection, and the
runner's way to apply what modules yield (commands, file uploads), with sudo when the task becomes root."""

from __future__ import annotations

import base64
import io
import posixpath
import threading
import uuid
from collections.abc import Callable

import fabric
import paramiko

from kfab.provision.local import LocalConnection, LocalShell
from kfab.provision.modules.base import CommandResult, FileInfo, PutFile, UnitInfo, q
from kfab.provision.shell import RemoteShell

# Ansible's become plugins kfab has: as root both switch user with runuser (no password, no sudo needed);
# otherwise sudo, with the become password on stdin. su from another user needs a terminal for its password.
BECOME_METHODS = ("sudo", "su")


class RemoteHost:
    """`conn`: a Fabric Connection, or a LocalConnection for `ansible_connection: local`.
    `become`/`become_user`/`check` are set by the runner per task while it holds `lock` (a task delegated
    to this host from another host's thread takes the same lock)."""

    def __init__(self, name: str, conn: fabric.Connection | LocalConnection, check: bool = False,
                 become_password: str | None = None,
                 connector: Callable[[float | None], fabric.Connection] | None = None):
        self.name = name
        self.conn = conn
        self.connector = connector   # a new connection to this host (timeout or None): after it rebooted
        self.lost = False            # the connection died (the host went down): reconnect before the next command
        self.check = check
        self.become = False
        self.become_user = "root"
        self.become_method = "sudo"
        self.become_password = become_password
        self.environment: dict[str, str] = {}    # the task's `environment`, for the commands it runs
        self.unit_files_changed = False
        self.done_once: set[str] = set()
        self.commands_run = 0
        self.lock = threading.RLock()
        self.shell = LocalShell() if isinstance(conn, LocalConnection) else RemoteShell(conn.client.get_transport())

    def close(self) -> None:
        self.shell.close()
        self.conn.close()

    @property
    def is_local(self) -> bool:
        return isinstance(self.conn, LocalConnection)

    def mark_lost(self) -> None:
        self.lost = True

    def reconnect(self, timeout: float | None = None) -> None:
        """Drop the (dead) connection and open a new one; the commands after this run over it. Raises
        HostUnreachable while the host does not answer."""
        if self.connector is None:
            raise RuntimeError(f"{self.name}: this connection cannot be opened again")
        try:
            self.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass     # the host closed it already
        self.conn = self.connector(timeout)
        self.shell = RemoteShell(self.conn.client.get_transport())
        self.lost = False

    # ---- running -----------------------------------------------------------------------------------
    def run(self, cmd: str, become: bool | None = None, timeout: float | None = None) -> CommandResult:
        """`timeout`: seconds to wait for the answer before the connection counts as lost (ShellClosed)."""
        if self.lost:
            self.reconnect()     # a reboot that timed out left a dead connection: a later task tries anew
        become = self.become if become is None else become
        if self.environment:
            cmd = "export " + " ".join(f"{k}={q(v)}" for k, v in self.environment.items()) + "; " + cmd
        stdin = None
        if become and self.conn.user != self.become_user:
            if self.conn.user == "root":
                # root needs no sudo (the lab images have none): runuser switches user without a password.
                cmd = f"runuser -u {q(self.become_user)} -- /bin/sh -c {q(cmd)}"
            elif self.become_method == "su":
                return CommandResult(1, "", f"become_method su as {self.conn.user}: kfab runs su only when "
                                            "connecting as root (su reads a password from a terminal); use sudo")
            elif self.become_password is not None:
                # -S: the password from stdin (a here-document, never a command line); -p '': no prompt text
                # in the output. The command itself reads /dev/null: when sudo needs no password (cached),
                # the password would otherwise still wait on its stdin.
                cmd = f"sudo -S -p '' -H -u {q(self.become_user)} -- /bin/sh -c {q('exec </dev/null; ' + cmd)}"
                stdin = self.become_password
            else:
                # -n: never prompt; a sudo that needs a password fails with a clear message instead of hanging.
                cmd = f"sudo -n -H -u {q(self.become_user)} -- /bin/sh -c {q(cmd)}"
        self.commands_run += 1
        return self.shell.run(cmd, stdin=stdin, timeout=timeout)

    def put(self, change: PutFile) -> CommandResult:
        """Upload to a temporary name, set mode and owner, then rename over the destination, so a reader
        never sees a half-written file."""
        directory = posixpath.dirname(change.path) or "/"
        as_root = self.conn.user == "root"
        tmp_dir = directory if as_root else "/tmp"
        tmp = posixpath.join(tmp_dir, f".kfab-{uuid.uuid4().hex[:12]}.tmp")
        check_dir = self.run(f"test -d {q(directory)}")
        if check_dir.rc != 0:
            return CommandResult(1, "", f"directory {directory} does not exist")
        try:
            if isinstance(self.conn, LocalConnection):
                self.conn.upload(change.content, tmp)
            else:
                self.conn.sftp().putfo(io.BytesIO(change.content), tmp)
        except OSError as exc:
            return CommandResult(1, "", f"upload to {tmp} failed: {exc}")
        # As a file the writing user creates (their login group: "user:"), then given to `owner` (the group
        # stays unless `group` is given), as Ansible leaves it.
        writer = self.become_user if self.become else self.conn.user
        t, dest, mode = q(tmp), q(change.path), change.mode or "0644"
        owners = [writer + ":"] + ([(change.owner or writer) + (":" + change.group if change.group else "")]
                                   if change.owner or change.group else [])

        def chown(path: str) -> str:
            return " && ".join(f"chown {q(o)} {path}" for o in owners)
        if as_root and writer != "root":
            # root uploaded it: handed to the become user first, who then puts it in place with their own
            # rights (as Ansible, a directory they cannot write is an error).
            handed = self.run(f"chown {q(writer + ':')} {t}", become=False)
            if handed.rc != 0:
                self.run(f"rm -f {t}", become=False)
                return handed
        if change.validate:
            checked = self.run(f"chmod {mode} {t} && {chown(t)} && " + change.validate.replace("%s", t))
            if checked.rc != 0:
                self.run(f"rm -f {t}")
                detail = (checked.stderr.strip() or checked.stdout.strip()).splitlines()
                return CommandResult(checked.rc, checked.stdout, "failed to validate" + (
                    f": {detail[-1]}" if detail else ""))
        if change.backup:
            # Ansible's backup name: the path, a timestamp, a tilde.
            self.run(f"cp -p {dest} {dest}.$(date +%Y-%m-%d@%H:%M:%S)~")
        # A container's /etc/hosts and /etc/hostname are bind mounts: renaming over them fails (EBUSY),
        # so those are rewritten in place.
        script = (f"chmod {mode} {t} && {chown(t)} && "
                  f"{{ mv -f {t} {dest} 2>/dev/null || {{ cat {t} > {dest} && chmod {mode} {dest} && "
                  f"{chown(dest)} && rm -f {t}; }}; }} || {{ rc=$?; rm -f {t}; exit $rc; }}")
        result = self.run(script)
        if result.rc == 0 and _is_unit_file(change.path):
            self.unit_files_changed = True
        return result

    # ---- reading (what modules call) -------------------------------------------------------------
    def file(self, path: str, content: bool = False) -> FileInfo | None:
        p = q(path)
        script = (f"if [ -L {p} ]; then echo link; readlink {p}; stat -c '%a %U %G' {p}; "
                  f"elif [ -d {p} ]; then echo directory; echo; stat -c '%a %U %G' {p}; "
                  f"elif [ -f {p} ]; then echo file; echo; stat -c '%a %U %G' {p}; "
                  + (f"base64 -w0 {p}; " if content else "")
                  + f"elif [ -e {p} ]; then echo other; echo; stat -c '%a %U %G' {p}; "
                  f"else echo absent; fi")
        result = self.run(script)
        lines = result.stdout.split("\n")
        if result.rc != 0 or not lines or lines[0] not in ("link", "directory", "file", "other"):
            if lines and lines[0] == "absent":
                return None
            raise RuntimeError(f"cannot inspect {path}: {result.stderr.strip() or result.stdout.strip()}")
        kind, target, attrs = lines[0], lines[1], lines[2].split()
        data = None
        if kind == "file" and content:
            data = base64.b64decode(lines[3] if len(lines) > 3 else "")
        return FileInfo(kind, f"{int(attrs[0], 8):04o}", attrs[1], attrs[2],
                        target=target if kind == "link" else None, content=data)

    def packages(self, names: list[str]) -> dict[str, bool]:
        out = self.run("dpkg-query -W -f='${Package}\\t${db:Status-Abbrev}\\n' "
                       + " ".join(q(n) for n in names) + " 2>/dev/null", become=False).stdout
        status = {}
        for line in out.splitlines():
            name, _, abbrev = line.partition("\t")
            status[name.split(":")[0]] = abbrev.startswith("ii")
        return {n: status.get(n.split("=")[0], False) for n in names}

    def sysctl(self, key: str) -> str | None:
        result = self.run(f"cat /proc/sys/{q(key.replace('.', '/'))}", become=False)
        return result.stdout.strip() if result.rc == 0 else None

    def unit(self, name: str) -> UnitInfo:
        out = self.run(f"systemctl show -p LoadState -p ActiveState -p UnitFileState {q(name)}",
                       become=False).stdout
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return UnitInfo(exists=props.get("LoadState") not in (None, "not-found"),
                        enabled=props.get("UnitFileState", ""), active=props.get("ActiveState", ""))

    def succeeds(self, cmd: str) -> bool:
        return self.run(f"/bin/sh -c {q(cmd)}").rc == 0

    def user(self, name: str) -> dict | None:
        result = self.run(f"getent passwd {q(name)} && id -gn {q(name)} && id -Gn {q(name)}", become=False)
        if result.rc != 0:
            return None
        passwd, group, groups = result.stdout.splitlines()[:3]
        fields = passwd.split(":")
        return {"uid": int(fields[2]), "home": fields[5], "shell": fields[6], "group": group,
                "groups": groups.split()}

    def stat(self, path: str, follow: bool, checksum: bool) -> dict | None:
        """Ansible's stat result fields that roles test (exists, isdir, isreg, islnk, mode, size...)."""
        p = q(path)
        flag = "-L " if follow else ""
        script = (f"[ -e {p} ] || [ -L {p} ] || {{ echo absent; exit 0; }}; "
                  f"stat {flag}-c '%F|%a|%u|%g|%U|%G|%s|%Y|%i|%h|%d' {p}; readlink {p} || echo; "
                  f"for t in -r -w -x; do test $t {p} && echo 1 || echo 0; done; "
                  + (f"[ -f {p} ] && sha1sum {p} | cut -d' ' -f1 || echo" if checksum else "echo"))
        result = self.run(script)
        lines = result.stdout.split("\n")
        if lines[0] == "absent":
            return None
        if result.rc != 0 or len(lines) < 6:
            raise RuntimeError(f"cannot stat {path}: {result.stderr.strip() or result.stdout.strip()}")
        kind, mode, uid, gid, owner, group, size, mtime, inode, nlink, dev = lines[0].split("|")
        info = {
            "exists": True, "path": path, "mode": f"{int(mode, 8):04o}",
            "isdir": kind == "directory", "isreg": kind.startswith("regular"),
            "islnk": kind == "symbolic link", "isblk": kind == "block special file",
            "ischr": kind == "character special file", "isfifo": kind == "fifo", "issock": kind == "socket",
            "uid": int(uid), "gid": int(gid), "pw_name": owner, "gr_name": group, "size": int(size),
            "mtime": float(mtime), "inode": int(inode), "nlink": int(nlink), "dev": int(dev),
            "readable": lines[2] == "1", "writeable": lines[3] == "1", "executable": lines[4] == "1",
        }
        if info["islnk"]:
            info["lnk_target"] = info["lnk_source"] = lines[1]
        if checksum and info["isreg"] and lines[5]:
            info["checksum"] = lines[5]
        return info

    def query(self, cmd: str) -> str | None:
        """stdout of a command that only reads (a module's facts, e.g. `pip list`); None if it failed."""
        result = self.run(cmd)
        return result.stdout if result.rc == 0 else None

    def group(self, name: str) -> dict | None:
        result = self.run(f"getent group {q(name)}", become=False)
        if result.rc != 0 or not result.stdout.strip():
            return None
        fields = result.stdout.strip().split(":")
        return {"name": fields[0], "gid": int(fields[2]), "members": [m for m in fields[3].split(",") if m]}

    def current_hostname(self) -> str:
        return self.run("hostname", become=False).stdout.strip()

    def wait_for(self, what: str, timeout: float, present: bool) -> bool:
        kind, _, target = what.partition(":")
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            probe = f"(exec 3<>/dev/tcp/{host}/{int(port)}) 2>/dev/null"
        else:
            probe = f"[ -e {q(target)} ]"
        loop = "until" if present else "while"
        script = f"{loop} {probe}; do sleep 0.2; done"
        return self.run(f"timeout {timeout:g} bash -c {q(script)}").rc == 0


def _is_unit_file(path: str) -> bool:
    return path.startswith(("/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"))
