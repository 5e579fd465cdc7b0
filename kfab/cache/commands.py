"""`kfab cache up|down|status`: Debian's apt-cacher-ng on this machine, so that many hosts fetch each package
from the mirror once. Point hosts at it with the inventory variable `package_proxy: http://ADDR:3142`
(role common writes /etc/apt/apt.conf.d/01kfab-proxy on every host).

It runs as this user's process (not the system service) with kfab's own configuration (kfab/cache/acng.py
says why not Debian's): its configuration, cache and logs live in STATE_DIR, and `down` stops exactly the
process `up` started (PID file, checked against /proc before the signal).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from kfab.cache.acng import CacheConfigError, config_text, read_transfers, this_machines_mirror
from kfab.provision.api import ProvisionError, Site

STATE_DIR = Path("~/.local/share/kfab/package-cache").expanduser()
# apt-cacher-ng 3.7 (Debian 12) fails "resolving address for binding" on ports above 32767.
MAX_PORT = 32767


def add_commands(subparsers) -> None:
    cache = subparsers.add_parser("cache", help="the apt package cache for install nights (apt-cacher-ng)")
    sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    p = sub.add_parser("up", help="start apt-cacher-ng on this machine (once)",
                       description="Start apt-cacher-ng on this machine. With -i, listen where the inventory's "
                                   "package_proxy points (e.g. the lab network's gateway).")
    p.add_argument("-i", "--inventory", help="listen on the address and port of this inventory's package_proxy")
    p.add_argument("--bind", help="address to listen on (default: all, so lab hosts reach it)")
    p.add_argument("--port", type=int, help="port (default 3142)")
    p.add_argument("--state-dir", type=Path, default=STATE_DIR, help=f"cache, logs, PID file (default {STATE_DIR})")
    p.add_argument("--mirror", default=None,
                   help="Debian mirror to fetch from (default: the one this machine's apt uses)")
    p.set_defaults(func=run_up)
    p = sub.add_parser("down", help="stop the apt-cacher-ng that `kfab cache up` started (the cache stays)")
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.set_defaults(func=run_down)
    p = sub.add_parser("status", help="running or not, and how many package downloads the cache saved")
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.set_defaults(func=run_status)


def _running(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "apt-cacher-ng.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"apt-cacher-ng" in cmdline else None


def _answers(bind: str, port: int, timeout: float) -> bool:
    """apt-cacher-ng itself answers HTTP there (a bare TCP connect is not proof: on some machines the network
    accepts connections to any address, and apt-cacher-ng stays alive when it could not bind)."""
    address = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(address, port, timeout=2)
        try:
            conn.request("GET", "/")
            if b"Apt-Cacher NG" in conn.getresponse().read(8192):   # its usage page
                return True
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    return False


def _listen_address(args) -> tuple[str, int]:
    """(bind, port): from --bind/--port, else from the inventory's package_proxy, else all addresses:3142."""
    bind, port = args.bind, args.port
    if args.inventory:
        proxy = inventory_package_proxy(args.inventory)
        url = urlparse(proxy)
        if url.scheme != "http" or not url.hostname:
            raise CacheConfigError(f"{args.inventory}: package_proxy {proxy!r} is not an http://ADDRESS:PORT URL "
                                   "(set it to where this machine's cache listens, e.g. http://10.78.0.1:3142)")
        bind, port = bind or url.hostname, port or url.port or 3142
    port = port or 3142
    if not 0 < port <= MAX_PORT:
        raise CacheConfigError(f"--port {port}: apt-cacher-ng listens only on ports 1-{MAX_PORT} "
                               "(it fails to bind higher ones)")
    return bind or "0.0.0.0", port


def inventory_package_proxy(path: str) -> str:
    try:
        site = Site(path, playbook=None)   # package_proxy is the inventory's, no role defaults it
        hosts = list(site.inventory.hosts)
        proxy = str(site.var(hosts[0], "package_proxy") or "") if hosts else ""
    except ProvisionError as exc:
        raise CacheConfigError(str(exc)) from None
    if not proxy:
        raise CacheConfigError(f"{path}: no package_proxy set: its hosts would not use the cache "
                               "(set package_proxy: http://ADDRESS:3142 in the inventory's all: vars:)")
    return proxy


def _configured(state: Path) -> tuple[str, int] | None:
    """(bind, port) of the running cache, from the configuration `up` wrote."""
    values = {}
    try:
        for line in (state / "conf" / "acng.conf").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                values[key.strip()] = value.strip()
        return values["BindAddress"], int(values["Port"])
    except (OSError, KeyError, ValueError):
        return None


def run_up(args) -> int:
    binary = shutil.which("apt-cacher-ng") or "/usr/sbin/apt-cacher-ng"
    if not Path(binary).exists():
        print("kfab cache up: apt-cacher-ng is not installed here: apt-get install apt-cacher-ng", file=sys.stderr)
        return 1
    state: Path = args.state_dir.expanduser().resolve()
    try:
        bind, port = _listen_address(args)
        config = config_text(state, port, bind, args.mirror or this_machines_mirror())
    except CacheConfigError as exc:
        print(f"kfab cache up: {exc}", file=sys.stderr)
        return 1
    if (pid := _running(state)) is not None:
        running = _configured(state)
        if running is not None and running[1] == port and running[0] in (bind, "0.0.0.0"):
            print(f"package cache already running (pid {pid}, {running[0]}:{running[1]})")
            return 0
        print(f"kfab cache up: a cache from {state} already runs (pid {pid}) on "
              f"{'%s:%d' % running if running else 'another address'}, not {bind}:{port}: "
              "`kfab cache down` first, or give another --state-dir", file=sys.stderr)
        return 1
    for sub in ("cache", "log", "conf"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "conf" / "acng.conf").write_text(config)
    output = state / "log" / "stdout.log"
    offset = output.stat().st_size if output.exists() else 0
    with open(output, "ab") as log:
        # ForeGround (in the configuration) keeps the PID we started apt-cacher-ng's PID.
        proc = subprocess.Popen([binary, "-c", str(state / "conf")], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    (state / "apt-cacher-ng.pid").write_text(f"{proc.pid}\n")
    if not _answers(bind, port, 10):
        proc.terminate()
        proc.wait(10)
        (state / "apt-cacher-ng.pid").unlink(missing_ok=True)
        with open(output, "rb") as log:
            log.seek(offset)
            said = log.read().decode(errors="replace").strip().splitlines()
        print(f"kfab cache up: apt-cacher-ng did not listen on {bind}:{port}"
              f"{': ' + said[-1] if said else ''} (is {bind} an address of this machine?); see {state / 'log'}",
              file=sys.stderr)
        return 1
    where = "<this machine's address on the hosts' network>" if bind == "0.0.0.0" else bind
    print(f"package cache up (pid {proc.pid}, cache in {state / 'cache'}); hosts use it with "
          f"package_proxy: http://{where}:{port}")
    return 0


def run_status(args) -> int:
    state: Path = args.state_dir.expanduser()
    pid = _running(state)
    transfers = read_transfers(state / "log" / "apt-cacher.log")
    print(f"package cache {'running (pid %d)' % pid if pid else 'not running'}; cache in {state / 'cache'}")
    print(f"files fetched from the mirror: {sum(transfers.fetched.values())}, "
          f"served to hosts: {sum(len(c) for c in transfers.served.values())}, "
          f"served from the cache: {transfers.hits}")
    return 0 if pid else 3


def run_down(args) -> int:
    state: Path = args.state_dir.expanduser().resolve()
    pid = _running(state)
    if pid is None:
        print("package cache not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            pass
        time.sleep(0.1)
    (state / "apt-cacher-ng.pid").unlink(missing_ok=True)
    print(f"package cache stopped (pid {pid}); the cache stays in {state / 'cache'}")
    return 0
