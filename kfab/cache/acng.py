"""apt-cacher-ng as `kfab cache up` runs it: its configuration, the Debian mirror it fetches from, and what
its transfer log says about hits.

The configuration is kfab's own (STATE_DIR/conf), not Debian's /etc/apt-cacher-ng: Debian's package remaps
every known Debian mirror (deb.debian.org included) to the backend in backends_debian, which defaults to
ftp.debian.org. Where only some mirror names resolve (this kind of machine resolves deb.debian.org, not
ftp.debian.org) every request then answers "503 Host not found". Here the backend is the mirror this
machine's own apt uses, which the hosts use too (the lab copies this machine's apt sources).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
SUPPORT_DIR = "/usr/lib/apt-cacher-ng"   # Debian's: the lists of known mirrors (deb_mirrors.gz), report pages


class CacheConfigError(Exception):
    pass


def _source_uris(text: str) -> list[str]:
    """Archive URIs of one sources file: one-line style (`deb [opts] URI suite ...`) or deb822 (`URIs:`)."""
    uris = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("URIs:"):
            uris.extend(line.split()[1:])
        elif line.startswith("deb ") or line.startswith("deb-src "):
            words = re.sub(r"\[[^\]]*\]", " ", line).split()
            if len(words) > 1:
                uris.append(words[1])
    return uris


def this_machines_mirror(sources=APT_SOURCES) -> str:
    """The Debian archive (not the security one) this machine's apt fetches from; deb.debian.org if none."""
    files = []
    for place in sources:
        if place.is_dir():
            files.extend(sorted(p for p in place.iterdir() if p.suffix in (".list", ".sources")))
        elif place.is_file():
            files.append(place)
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in _source_uris(text):
            if uri.startswith("http://") and "security" not in uri:
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def check_mirror(mirror: str) -> str:
    """A mirror URL apt-cacher-ng can fetch from: http:// with a host (apt sends https past the proxy)."""
    url = urlparse(mirror)
    if url.scheme != "http" or not url.hostname:
        raise CacheConfigError(f"--mirror {mirror!r}: expected an http:// Debian mirror URL, "
                               f"e.g. {DEFAULT_MIRROR}")
    return mirror.rstrip("/") + "/"


def config_text(state_dir: Path, port: int, bind: str, mirror: str) -> str:
    """acng.conf: where the cache and logs live, where to listen, and one backend per remapped archive."""
    mirror = check_mirror(mirror)
    return "\n".join([
        "# Written by `kfab cache up` (kfab/cache/acng.py); rewritten at every start.",
        f"CacheDir: {state_dir / 'cache'}",
        f"LogDir: {state_dir / 'log'}",
        f"SupportDir: {SUPPORT_DIR}",
        f"Port: {port}",
        f"BindAddress: {bind}",
        f"PidFile: {state_dir / 'acng-internal.pid'}",
        f"SocketPath: {state_dir / 'socket'}",
        "ForeGround: 1",
        # Requests for any known Debian mirror share one cache, fetched from the mirror that works here.
        f"Remap-debrep: file:deb_mirror*.gz /debian ; {mirror}",
        "Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security "
        "/debian-security ; deb.debian.org/debian-security security.debian.org",
        "ReportPage: acng-report.html",
        "ExThreshold: 4",
        "",
    ])


@dataclass
class Transfers:
    """From apt-cacher-ng's transfer log: files fetched from the mirror (I lines) and served to hosts (O)."""
    fetched: dict[str, int]
    served: dict[str, list[str]]   # path -> the client addresses it went to, in order

    @property
    def hits(self) -> int:
        """Deliveries beyond each file's fetches: what the mirror did not have to send again."""
        return sum(max(0, len(clients) - self.fetched.get(path, 0)) for path, clients in self.served.items())


def read_transfers(log: Path) -> Transfers:
    """Parse apt-cacher.log lines `time|I or O|bytes|client|path` (other kinds of line are skipped)."""
    fetched: dict[str, int] = {}
    served: dict[str, list[str]] = {}
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.split("|", 4)
        if len(parts) != 5:
            continue
        _, kind, _, client, path = parts
        if kind == "I":
            fetched[path] = fetched.get(path, 0) + 1
        elif kind == "O":
            served.setdefault(path, []).append(client)
    return Transfers(fetched, served)
