"""`kfab cache up|down|status`: Debian's apt-cacher-ng on this machine, so that many hosts fetch each package
from the mirror once. Point hosts at it with the inventory variable `package_proxy: http://ADDR:3142`
(role common writes /etc/apt/apt.conf.d/01kfab-proxy on every host).

It runs as this user's process (not the system service) with kfab's own configuration (kfab/cache/acng.py
says why not Debian's): its configuration, cache and logs live in STATE_DIR, and `down` stops exactly the
process `up` started (PID file, checked against /proc before the signal).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kfab.cache.acng import CacheConfigError, config_text, read_transfers, this_machines_mirror

STATE_DIR = Path("~/.local/share/kfab/package-cache").expanduser()
# apt-cacher-ng 3.7 (Debian 12) fails "resolving address for binding" on ports above 32767.
MAX_PORT = 32767


def add_commands(subparsers) -> None:
    cache = subparsers.add_parser("cache", help="the apt package cache for install nights (apt-cacher-ng)")
    sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    p = sub.add_parser("up", help="start apt-cacher-ng on this machine (once)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all, so lab hosts reach it)")
    p.add_argument("--port", type=int, default=3142)
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
    address = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run_up(args) -> int:
    binary = shutil.which("apt-cacher-ng") or "/usr/sbin/apt-cacher-ng"
    if not Path(binary).exists():
        print("kfab cache up: apt-cacher-ng is not installed here: apt-get install apt-cacher-ng", file=sys.stderr)
        return 1
    state: Path = args.state_dir.expanduser().resolve()
    if (pid := _running(state)) is not None:
        print(f"package cache already running (pid {pid}; {state / 'conf' / 'acng.conf'})")
        return 0
    if not 0 < args.port <= MAX_PORT:
        print(f"kfab cache up: --port {args.port}: apt-cacher-ng listens only on ports "
              f"1-{MAX_PORT} (it fails to bind higher ones)", file=sys.stderr)
        return 1
    try:
        config = config_text(state, args.port, args.bind, args.mirror or this_machines_mirror())
    except CacheConfigError as exc:
        print(f"kfab cache up: {exc}", file=sys.stderr)
        return 1
    for sub in ("cache", "log", "conf"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "conf" / "acng.conf").write_text(config)
    log = open(state / "log" / "stdout.log", "ab")
    # ForeGround (in the configuration) keeps the PID we started apt-cacher-ng's PID.
    proc = subprocess.Popen([binary, "-c", str(state / "conf")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (state / "apt-cacher-ng.pid").write_text(f"{proc.pid}\n")
    if not _answers(args.bind, args.port, 10):
        proc.terminate()
        proc.wait(10)
        (state / "apt-cacher-ng.pid").unlink(missing_ok=True)
        print(f"kfab cache up: apt-cacher-ng did not listen on port {args.port}; see {state / 'log'}", file=sys.stderr)
        return 1
    where = "<this machine's address on the hosts' network>" if args.bind in ("0.0.0.0", "") else args.bind
    print(f"package cache up (pid {proc.pid}, cache in {state / 'cache'}); in the inventory set "
          f"package_proxy: http://{where}:{args.port}")
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
    state: Path = args.state_dir
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
