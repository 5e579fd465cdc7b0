"""iSCSI volumes: open-iscsi discovery and login (CHAP as Kubernetes' iscsi volume defines it), the LUN's block
device, a filesystem made only on a blank device, and one node-wide mount that pods bind.

Names follow the kubelet's iscsi plugin so what a user reads matches Kubernetes: the unique volume name
`kubernetes.io/iscsi/<portal>:<iqn>:<lun>` (in Node status), the udev by-path device link, and a global mount
directory `<portal>-<iqn>-lun-<n>`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kfab.node.storage.mounts import CommandError, run

DEFAULT_PORT = 3260
DEVICE_WAIT = 30.0  # udev makes the by-path link after login; slow under emulation

# Secret keys of a kubernetes.io/iscsi-chap Secret (Kubernetes' iscsi volume docs), per CHAP phase.
CHAP_KEYS = {
    "discovery": ("discovery.sendtargets.auth.username", "discovery.sendtargets.auth.password",
                  "discovery.sendtargets.auth.username_in", "discovery.sendtargets.auth.password_in"),
    "session": ("node.session.auth.username", "node.session.auth.password",
                "node.session.auth.username_in", "node.session.auth.password_in"),
}


class IscsiSourceError(ValueError):
    pass


def normalize_portal(portal: str) -> str:
    """host:port, with the iSCSI port added when missing (as the kubelet does)."""
    portal = portal.strip()
    if portal.startswith("["):
        return portal if "]:" in portal else f"{portal}:{DEFAULT_PORT}"
    return portal if ":" in portal else f"{portal}:{DEFAULT_PORT}"


@dataclass(frozen=True)
class IscsiTarget:
    portal: str
    iqn: str
    lun: int
    fs_type: str = "ext4"
    read_only: bool = False
    iface: str = "default"
    chap_discovery: bool = False
    chap_session: bool = False
    secret_name: str = ""
    secret_namespace: str = ""

    @classmethod
    def from_source(cls, source: dict, namespace: str, read_only: bool = False) -> "IscsiTarget":
        """From a PV's or pod's `iscsi:` source; the Secret defaults to the pod's namespace."""
        for key in ("targetPortal", "iqn"):
            if not source.get(key):
                raise IscsiSourceError(f"iscsi.{key} is required")
        try:
            lun = int(source.get("lun", 0))
        except (TypeError, ValueError):
            raise IscsiSourceError(f"iscsi.lun: {source.get('lun')!r} is not a number") from None
        if not 0 <= lun <= 255:
            raise IscsiSourceError(f"iscsi.lun: {lun} is not between 0 and 255")
        chap_d, chap_s = bool(source.get("chapAuthDiscovery")), bool(source.get("chapAuthSession"))
        ref = source.get("secretRef") or {}
        if (chap_d or chap_s) and not ref.get("name"):
            raise IscsiSourceError("iscsi.secretRef.name is required with chapAuthDiscovery/chapAuthSession")
        return cls(portal=normalize_portal(str(source["targetPortal"])), iqn=str(source["iqn"]), lun=lun,
                   fs_type=source.get("fsType") or "ext4",
                   read_only=read_only or bool(source.get("readOnly")),
                   iface=source.get("iscsiInterface") or "default", chap_discovery=chap_d, chap_session=chap_s,
                   secret_name=ref.get("name", ""), secret_namespace=ref.get("namespace") or namespace)

    @property
    def unique_name(self) -> str:
        return f"kubernetes.io/iscsi/{self.portal}:{self.iqn}:{self.lun}"

    @property
    def by_path(self) -> Path:
        return Path(f"/dev/disk/by-path/ip-{self.portal}-iscsi-{self.iqn}-lun-{self.lun}")

    @property
    def mount_name(self) -> str:
        return f"{self.portal}-{self.iqn}-lun-{self.lun}"

    def save(self, path: Path) -> None:
        """What a later release (maybe by a restarted agent) needs to log out; never the CHAP secrets."""
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> "IscsiTarget":
        return cls(**json.loads(path.read_text()))


def chap_settings(secret: dict[str, bytes], phase: str) -> list[tuple[str, str]]:
    """The open-iscsi settings for one CHAP phase ("discovery" or "session") from the Secret's data."""
    user_key, pass_key, user_in_key, pass_in_key = CHAP_KEYS[phase]
    missing = [k for k in (user_key, pass_key) if not secret.get(k)]
    if missing:
        raise IscsiSourceError(f"CHAP secret has no {' or '.join(missing)}")
    method = "discovery.sendtargets.auth.authmethod" if phase == "discovery" else "node.session.auth.authmethod"
    out = [(method, "CHAP"), (user_key, secret[user_key].decode()), (pass_key, secret[pass_key].decode())]
    for key in (user_in_key, pass_in_key):  # mutual CHAP: the target proves itself too
        if secret.get(key):
            out.append((key, secret[key].decode()))
    return out


def discovery_commands(t: IscsiTarget, settings: list[tuple[str, str]]) -> list[list[str]]:
    base = ["iscsiadm", "-m", "discoverydb", "-t", "sendtargets", "-p", t.portal, "-I", t.iface]
    if not settings:  # no CHAP: clear what an earlier (CHAP) discovery of this portal left in the database
        settings = [("discovery.sendtargets.auth.authmethod", "None")]
    return [base + ["-o", "new"], *(base + ["-o", "update", "-n", k, "-v", v] for k, v in settings),
            base + ["--discover"]]


def node_commands(t: IscsiTarget, settings: list[tuple[str, str]]) -> list[list[str]]:
    base = ["iscsiadm", "-m", "node", "-p", t.portal, "-T", t.iqn, "-I", t.iface]
    if not settings:
        settings = [("node.session.auth.authmethod", "None")]
    return [*(base + ["-o", "update", "-n", k, "-v", v] for k, v in settings), base + ["--login"]]


def logout_commands(t: IscsiTarget) -> list[list[str]]:
    base = ["iscsiadm", "-m", "node", "-p", t.portal, "-T", t.iqn, "-I", t.iface]
    return [base + ["--logout"], base + ["-o", "delete"]]


def parse_sessions(text: str) -> set[tuple[str, str]]:
    """(portal, iqn) of `iscsiadm -m session` lines: `tcp: [1] 10.0.0.1:3260,1 iqn.... (non-flash)`."""
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith(":"):
            out.add((parts[2].rsplit(",", 1)[0], parts[3]))
    return out


def mkfs_command(fs_type: str, device: str) -> list[str]:
    if fs_type in ("ext2", "ext3", "ext4"):
        return [f"mkfs.{fs_type}", "-F", "-m0", device]  # the kubelet's choice: no reserved blocks on a volume
    return [f"mkfs.{fs_type}", device]


def parse_blkid(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


async def sessions() -> set[tuple[str, str]]:
    if shutil.which("iscsiadm") is None:
        # No initiator installed, so no session to log out of: a failed attempt on such a node must still
        # give its claim back (raising here would keep the volume from every other node).
        return set()
    try:
        return parse_sessions(await run(["iscsiadm", "-m", "session"]))
    except CommandError as e:
        if "No active sessions" in str(e) or "exit status 21" in str(e):
            return set()
        raise


async def login(t: IscsiTarget, secret: dict[str, bytes]) -> None:
    """Discovery and login, unless a session to the target is already there (a restarted agent)."""
    if (t.portal, t.iqn) in await sessions():
        return
    disc = chap_settings(secret, "discovery") if t.chap_discovery else []
    sess = chap_settings(secret, "session") if t.chap_session else []
    hide = tuple(v for _, v in disc + sess if v not in ("CHAP", "None"))
    for cmd in discovery_commands(t, disc):
        await run(cmd, hide=hide)
    try:
        for cmd in node_commands(t, sess):
            await run(cmd, hide=hide)
    except CommandError:
        # A refused login (a wrong CHAP secret) leaves no session; drop the node record with its credentials.
        if await _has_record(t):
            await run(logout_commands(t)[1], hide=hide)
        raise


async def _has_record(t: IscsiTarget) -> bool:
    try:
        await run(["iscsiadm", "-m", "node", "-p", t.portal, "-T", t.iqn, "-I", t.iface])
        return True
    except CommandError:
        return False


async def logout(t: IscsiTarget) -> None:
    if (t.portal, t.iqn) in await sessions():
        await run(logout_commands(t)[0])
    if await _has_record(t):
        await run(logout_commands(t)[1])


async def wait_for_device(t: IscsiTarget, timeout: float = DEVICE_WAIT) -> Path:
    deadline = time.monotonic() + timeout
    while not t.by_path.exists():
        if time.monotonic() > deadline:
            raise CommandError(f"logged in to {t.iqn} at {t.portal}, but {t.by_path} did not appear within "
                               f"{int(timeout)}s (no LUN {t.lun} on the target?)")
        await asyncio.sleep(0.2)
    return t.by_path.resolve()


async def ensure_filesystem(t: IscsiTarget, device: Path) -> None:
    """mkfs only a blank device: blkid exit status 2 means it found no filesystem and no partition table."""
    try:
        found = parse_blkid(await run(["blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", str(device)]))
    except CommandError as e:
        if "exit status 2" not in str(e):
            raise
        found = {}
    if found.get("TYPE"):
        if found["TYPE"] != t.fs_type:
            raise CommandError(f"{device} ({t.by_path.name}) already holds a {found['TYPE']} filesystem, "
                               f"the volume asks for fsType {t.fs_type}: not reformatting it")
        return
    if found.get("PTTYPE"):
        raise CommandError(f"{device} ({t.by_path.name}) has a {found['PTTYPE']} partition table and no "
                           f"filesystem: not formatting it")
    if t.read_only:
        raise CommandError(f"{device} ({t.by_path.name}) is blank and the volume is read-only: cannot format it")
    await run(mkfs_command(t.fs_type, str(device)), timeout=300.0)
