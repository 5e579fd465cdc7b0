"""A real 3-member etcd cluster on 127.0.0.1 for tests and benchmarks (Debian's /usr/bin/etcd).

    with EtcdCluster() as cluster:
        url = cluster.url                 # etcd://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
        cluster.stop_member(0)            # SIGTERM (kill=True: SIGKILL)
        cluster.start_member(0)           # rejoins with its data dir and catches up

    EtcdCluster(tls=True): clients must speak TLS with a client certificate (members' certificates and the
    client's from a throwaway CA in the cluster's directory); `url` then carries etcd+https:// and the files.

Free ports, a temporary data dir per member; every process it starts is stopped by PID on exit, and
members run under `setpriv --pdeathsig KILL` so they die with the process that started them even if that
process is killed (call start/stop from the main thread: the signal follows the starting thread). No
preexec_fn: running Python in a forked child of a process with gRPC threads can crash the child.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from kfab.pki import ca as pki

ETCD = os.environ.get("KFAB_TEST_ETCD", "/usr/bin/etcd")
SETPRIV = shutil.which("setpriv")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdCluster:
    def __init__(self, size: int = 3, start_timeout: float = 60.0, tls: bool = False):
        self.size, self.tls = size, tls
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="kfab-etcd-"))
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.names = [f"m{i}" for i in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size
        self.token = f"kfab-test-{os.getpid()}-{self.client_ports[0]}"
        if tls:
            self._make_certificates()

    # ---- addresses -----------------------------------------------------------------------------------

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    @property
    def url(self) -> str:
        """The kfab store URL for the whole cluster."""
        return self._url(self.endpoints)

    def member_url(self, i: int) -> str:
        return self._url([self.endpoints[i]])

    def _url(self, endpoints: list[str]) -> str:
        if not self.tls:
            return "etcd://" + ",".join(endpoints)
        pki_dir = self.dir / "pki"
        return (f"etcd+https://{','.join(endpoints)}?cacert={pki_dir}/ca.crt&cert={pki_dir}/client.crt"
                f"&key={pki_dir}/client.key")

    def _make_certificates(self) -> None:
        pki_dir = self.dir / "pki"
        authority = pki.new_ca("kfab-test-etcd")
        pki.save(authority, pki_dir / "ca.crt", pki_dir / "ca.key")
        # One serving pair for every member: they all listen on 127.0.0.1 (and peer with it).
        pki.save(pki.issue(authority, "etcd-member", server_names=("localhost",), server_ips=("127.0.0.1",),
                           client=True), pki_dir / "member.crt", pki_dir / "member.key")
        pki.save(pki.issue(authority, "kube-apiserver-etcd-client", client=True),
                 pki_dir / "client.crt", pki_dir / "client.key")

    # ---- lifecycle -----------------------------------------------------------------------------------

    def _command(self, i: int) -> list[str]:
        initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports))
        die_with_parent = [SETPRIV, "--pdeathsig", "KILL"] if SETPRIV else []
        scheme = "https" if self.tls else "http"
        pki_dir = self.dir / "pki"
        tls = ["--cert-file", str(pki_dir / "member.crt"), "--key-file", str(pki_dir / "member.key"),
               "--trusted-ca-file", str(pki_dir / "ca.crt"), "--client-cert-auth"] if self.tls else []
        return [
            *die_with_parent, ETCD, "--name", self.names[i], "--data-dir", str(self.dir / self.names[i]),
            "--listen-client-urls", f"{scheme}://127.0.0.1:{self.client_ports[i]}",
            "--advertise-client-urls", f"{scheme}://127.0.0.1:{self.client_ports[i]}", *tls,
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-cluster", initial, "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new",
            # Tests stop and start members; quicker elections keep failover tests short.
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]

    def _spawn(self, i: int) -> None:
        log = open(self.dir / f"{self.names[i]}.log", "ab")
        try:
            self.procs[i] = subprocess.Popen(self._command(i), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def healthy(self, i: int) -> bool:
        context = None
        if self.tls:
            pki_dir = self.dir / "pki"
            context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
            context.load_cert_chain(pki_dir / "client.crt", pki_dir / "client.key")
        scheme = "https" if self.tls else "http"
        try:
            with urllib.request.urlopen(f"{scheme}://{self.endpoints[i]}/health", timeout=1, context=context) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, members: list[int] | None = None, timeout: float | None = None) -> None:
        members = list(range(self.size)) if members is None else members
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            dead = [i for i in members if self.procs[i] is None or self.procs[i].poll() is not None]
            if dead:
                raise RuntimeError(f"etcd member(s) {dead} exited; logs in {self.dir}")
            if all(self.healthy(i) for i in members):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd members {members} not healthy in time; logs in {self.dir}")
            time.sleep(0.1)

    def start(self) -> "EtcdCluster":
        for i in range(self.size):
            self._spawn(i)
        self.wait_healthy()
        return self

    def stop_member(self, i: int, kill: bool = False) -> None:
        proc, self.procs[i] = self.procs[i], None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def start_member(self, i: int, wait: bool = True) -> None:
        if self.procs[i] is not None and self.procs[i].poll() is None:
            return
        self._spawn(i)  # its data dir exists, so it rejoins the cluster and catches up from peers
        if wait:
            self.wait_healthy([i])

    def stop(self) -> None:
        for i in range(self.size):
            self.stop_member(i)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "EtcdCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
