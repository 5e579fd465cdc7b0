"""The bundle's apt repository served to the hosts over HTTP from this machine, for the length of one `kfab up`.

It listens only on the address this machine uses towards the hosts (the route to the first host says which),
on a fixed port so that the hosts' apt sources stay the same from one run to the next.
"""

from __future__ import annotations

import functools
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_PORT = 3143   # next to apt-cacher-ng's 3142


def address_towards(host_address: str) -> str:
    """This machine's source address for packets to `host_address` (no packet is sent)."""
    with socket.socket(socket.AF_INET6 if ":" in host_address else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host_address, 9))
        return s.getsockname()[0]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):   # noqa: A002 - the base class's name
        pass


class RepositoryServer:
    """`with RepositoryServer(dir, address, port) as url:` serves `dir` at `url` until the block ends."""

    def __init__(self, directory: Path, address: str, port: int = DEFAULT_PORT):
        handler = functools.partial(_Quiet, directory=str(directory))
        try:
            self.server = ThreadingHTTPServer((address, port), handler)
        except OSError as exc:
            raise OSError(f"cannot serve the bundle's packages on {address}:{port} ({exc.strerror}); "
                          "give another port with --bundle-port") from None
        self.server.daemon_threads = True
        self.url = f"http://{address if ':' not in address else f'[{address}]'}:{port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="bundle-repo", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
