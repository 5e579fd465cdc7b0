"""`kfab cache up|down|status`: Debian's apt-cacher-ng on this machine, so that many hosts fetch each package
from the mirror once. Point hosts at it with the inventory variable `package_proxy: http://ADDR:3142`
(role common writes /etc/apt/apt.conf.d/01kfab-proxy on every host).

It runs as this user's process (not the system service): its cache and logs live in STATE_DIR, and `down`
stops exactly the process `up` started (PID file, checked against /proc before the signal).
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

STATE_DIR = Path("~/.local/share/kfab/package-cache").expanduser()
CONFIG_DIR = "/etc/apt-cacher-ng"   # Debian's: mirror backends and remapping rules


def add_commands(subparsers) -> None:
    cache = subparsers.add_parser("cache", help="the apt package cache for install nights (apt-cacher-ng)")
    sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    p = sub.add_parser("up", help="start apt-cacher-ng on this machine (once)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all, so lab hosts reach it)")
    p.add_argument("--port", type=int, default=3142)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR, help=f"cache, logs, PID file (default {STATE_DIR})")
    p.set_defaults(func=run_up)
    p = sub.add_parser("down", help="stop the apt-cacher-ng that `kfab cache up` started (the cache stays)")
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.set_defaults(func=run_down)


def _running(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "apt-cacher-ng.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"apt-cacher-ng" in cmdline else None


def _answers(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run_up(args) -> int:
    binary = shutil.which("apt-cacher-ng") or "/usr/sbin/apt-cacher-ng"
    if not Path(binary).exists():
        print("kfab cache up: apt-cacher-ng is not installed here: apt-get install apt-cacher-ng", file=sys.stderr)
        return 1
    state: Path = args.state_dir
    if (pid := _running(state)) is not None:
        print(f"package cache already running (pid {pid}); hosts use package_proxy: http://<this machine>:{args.port}")
        return 0
    for sub in ("cache", "log"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    log = open(state / "log" / "stdout.log", "ab")
    # Settings on the command line override acng.conf (apt-cacher-ng(8)); ForeGround keeps our PID its PID.
    proc = subprocess.Popen([binary, "-c", CONFIG_DIR, "ForeGround=1", f"Port={args.port}",
                             f"BindAddress={args.bind}", f"CacheDir={state / 'cache'}", f"LogDir={state / 'log'}",
                             f"PidFile={state / 'acng-internal.pid'}", "SocketPath=" + str(state / "socket")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (state / "apt-cacher-ng.pid").write_text(f"{proc.pid}\n")
    if not _answers(args.port, 10):
        proc.terminate()
        print(f"kfab cache up: apt-cacher-ng did not listen on port {args.port}; see {state / 'log'}", file=sys.stderr)
        return 1
    print(f"package cache up (pid {proc.pid}, cache in {state / 'cache'}); in the inventory set "
          f"package_proxy: http://<this machine's address on the hosts' network>:{args.port}")
    return 0


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
