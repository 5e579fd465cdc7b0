"""A cluster for node-agent tests and benchmarks: `kfab server` on this machine, bound to the lab gateway,
and `kfab node` on the lab's workers, installed by `kfab up` with tests/lab/playbooks/node.yml.

Used by the session fixture of tests/lab/test_node_agent.py and by bench/node.py. Everything it starts it
stops by PID (the server) or by name (the kfab-node unit, Podman pods labelled by kfab).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
BUSYBOX_IMAGE = "localhost/kfab-busybox:1"
TLS_CLIENT_IMAGE = "localhost/kfab-busybox-openssl:1"
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "sleep", "httpd", "wget", "nc", "env", "id", "ps", "kill",
                   "true", "false", "touch", "mkdir", "date", "hostname", "ip", "pwd", "grep", "test")


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    """tests.waiting.wait_until, errors counting as "not yet" (new tests: call wait_until)."""
    return wait_until(what, check, timeout, interval, retry_on=(Exception,))


def _busybox_context(workdir: Path) -> Path:
    """A build context with Debian's busybox-static and its applet links in bin/."""
    ctx = workdir / "busybox"
    (ctx / "bin").mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "busybox-static"], cwd=workdir, check=True, capture_output=True)
    deb = next(workdir.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "deb")], check=True)
    shutil.copy2(workdir / "deb" / "bin" / "busybox", ctx / "bin" / "busybox")
    listed = subprocess.run([str(ctx / "bin" / "busybox"), "--list"], capture_output=True, text=True, check=True)
    for applet in set(BUSYBOX_APPLETS) | set(listed.stdout.split()):
        link = ctx / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    return ctx


def build_busybox_image(workdir: Path) -> Path:
    """LAB.md's recipe: Debian's busybox-static in a FROM scratch image; saved to a tar for `podman load`."""
    tar = workdir / "busybox.tar"
    ctx = _busybox_context(workdir)
    (ctx / "Containerfile").write_text('FROM scratch\nCOPY bin /bin\nCMD ["/bin/sh"]\n')
    subprocess.run(["podman", "build", "-q", "-t", BUSYBOX_IMAGE, str(ctx)], check=True, capture_output=True)
    subprocess.run(["podman", "save", "-o", str(tar), BUSYBOX_IMAGE], check=True, capture_output=True)
    return tar


def build_tls_client_image(workdir: Path) -> str:
    """The busybox image plus Debian's openssl and the libraries it loads (11 MB); its name.

    For in-cluster clients that speak TLS to the API server: busybox 1.35's own TLS sends no
    signature_algorithms, so in TLS 1.2 it can only be answered with SHA-1 handshake signatures, which RFC 9155
    forbids and OpenSSL 3's default security level refuses ("no shared cipher"; Go 1.25 servers refuse them
    too). With `openssl` on PATH busybox wget does https through `openssl s_client`, and tests can verify the
    served certificate with `openssl s_client -CAfile`."""
    ctx = _busybox_context(workdir)
    debs = ("openssl", "libssl3", "libc6")
    subprocess.run(["apt-get", "download", *debs], cwd=workdir, check=True, capture_output=True)
    for name in debs:
        deb = next(workdir.glob(f"{name}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(ctx)], check=True)
    for unneeded in (ctx / "usr" / "share", ctx / "usr" / "lib" / "x86_64-linux-gnu" / "gconv"):
        shutil.rmtree(unneeded, ignore_errors=True)
    (ctx / "Containerfile").write_text('FROM scratch\nCOPY . /\nCMD ["/bin/sh"]\n')
    subprocess.run(["podman", "build", "-q", "-t", TLS_CLIENT_IMAGE, str(ctx)], check=True, capture_output=True)
    return TLS_CLIENT_IMAGE


class NodeCluster:
    def __init__(self, lab, workers: list[str], extra_vars: dict[str, str] | None = None):
        self.lab = lab                # tests/lab/conftest.py LabHosts
        self.workers = workers
        self.extra_vars = extra_vars or {}  # more `kfab up -e` for node.yml (e.g. node_agent_cluster_dns)
        self.workdir = Path(tempfile.mkdtemp(prefix="kfab-node-test-"))
        self.data_dir = self.workdir / "server"
        self.server: subprocess.Popen | None = None
        self.gateway = lab.lab.spec.gateway
        self.kubeconfig = self.data_dir / "admin.kubeconfig"
        self.server_log = self.workdir / "server.log"

    # --- kubectl -----------------------------------------------------------------------------------

    def kubectl_argv(self) -> list[str]:
        kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
        return [kubectl, "--kubeconfig", str(self.kubeconfig)]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
                ) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.kubectl_argv(), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc

    def get(self, kind: str, name: str, namespace: str = "default") -> dict:
        import json
        return json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)

    def apply(self, manifest: dict | str) -> None:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        self.kubectl("apply", "-f", "-", input=text)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> "NodeCluster":
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "NodeCluster":
        self._start_server()
        creds = self.workdir / "credentials"
        for host in self.workers:
            out = creds / host
            out.mkdir(parents=True, exist_ok=True)
            subprocess.run(KFAB + ["kubeconfig", "--data-dir", str(self.data_dir), "--user", f"system:node:{host}",
                                   "--group", "system:nodes", "--server", self.server_url,
                                   "-o", str(out / "kubeconfig")], check=True, capture_output=True, text=True)
            subprocess.run(KFAB + ["node-cert", "--data-dir", str(self.data_dir), "--node-name", host,
                                   "--ip", self.lab.hosts[host], "--out-dir", str(out)],
                           check=True, capture_output=True, text=True)
        from kfab.install.wheelhouse import build
        wheelhouse = build()
        image_tar = build_busybox_image(self.workdir)
        proc = subprocess.run(KFAB + ["up", "-i", str(self.lab.inventory), "--limit", ",".join(self.workers),
                                      "-e", f"node_agent_wheelhouse={wheelhouse}",
                                      "-e", f"node_agent_credentials_dir={creds}",
                                      *(a for k, v in self.extra_vars.items() for a in ("-e", f"{k}={v}")),
                                      str(REPO / "tests" / "lab" / "playbooks" / "node.yml")],
                              capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL, cwd=REPO)
        if proc.returncode != 0:
            raise AssertionError(f"kfab up node.yml failed:\n{proc.stdout}{proc.stderr}")
        for host in self.workers:
            with open(image_tar, "rb") as f:
                subprocess.run(self.lab.lab.ssh_command(host) + ["podman load -q"], stdin=f, check=True,
                               capture_output=True, timeout=120)
        for host in self.workers:
            wait_for(f"node {host} Ready", lambda host=host: self._node_ready(host), timeout=90)
        return self

    def _start_server(self) -> None:
        self.data_dir.mkdir(parents=True)
        log = open(self.server_log, "wb")
        self.server = subprocess.Popen(KFAB + ["server", "--data-dir", str(self.data_dir), "--port", "0",
                                               "--bind", self.gateway],
                                       stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

        def url():
            for line in self.server_log.read_text().splitlines():
                if "listening on" in line:
                    return line.split("listening on ", 1)[1].split()[0]
            if self.server.poll() is not None:
                raise AssertionError(f"kfab server exited:\n{self.server_log.read_text()}")
            return None
        self.server_url = wait_for("kfab server to listen", url, timeout=60)

    def _node_ready(self, host: str) -> bool:
        node = self.get("node", host, "")
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))

    def stop(self) -> None:
        for host in self.workers:
            # Only what this cluster started: the agent unit and the Podman pods kfab labelled.
            self.lab.ssh(host, "systemctl stop kfab-node; "
                               "podman pod rm -f -t 0 $(podman pod ps -q --filter label=kfab.io/pod-uid) 2>/dev/null; "
                               "true", check=False)
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if os.environ.get("KFAB_NODE_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
