"""Fixtures for API tests: one real `kfab server` per session, driven by real kubectl and the official client.

    kfab_server   the running server: .url, .kubeconfig (admin, client certificate), .data_dir, .pid
    kubectl       kubectl(*args, input=None, check=True, env=None) -> CompletedProcess (text)
    run_kubectl   run_kubectl(kubeconfig, *args, ...): real kubectl as any user (their kubeconfig)
    wait_until    wait_until(condition, what, timeout): poll a condition with a deadline
    user_kubeconfig  user_kubeconfig(data_dir, out_dir, user, *groups): a client-cert kubeconfig for a user
    service_account_kubeconfig  (admin kubeconfig, url, ca, out_dir, namespace, name): a bearer-token
                  kubeconfig as that ServiceAccount (the account is made if missing; `kubectl create token`)
    k8s           kubernetes.client.ApiClient for the admin kubeconfig
    namespace     a fresh namespace for one test, holding its default ServiceAccount and kube-root-ca.crt
                  (deleted afterwards)
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kfab.pki.kubeconfig import server_url_of, write_kubeconfig
from tests import waiting

REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
STARTUP_DEADLINE = 60.0
KUBECTL_TIMEOUT = 60.0


@dataclass
class KfabServer:
    url: str
    kubeconfig: Path
    data_dir: Path
    pid: int
    log: Path


def _ready(url: str, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_server(data_dir: Path, *extra: str) -> tuple[subprocess.Popen, KfabServer]:
    """Start `kfab server` on a free loopback port; wait until /readyz answers (or fail with its log)."""
    log = data_dir / "server.log"
    kubeconfig = data_dir / "admin.kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "kfab", "server", "--data-dir", str(data_dir), "--port", "0",
                             "--bind", "127.0.0.1", *extra],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kfab server exited with {proc.returncode}:\n{log.read_text()}")
        url = server_url_of(kubeconfig) if kubeconfig.exists() else None
        if url and _ready(url, data_dir / "pki" / "ca.crt"):
            return proc, KfabServer(url, kubeconfig, data_dir, proc.pid, log)
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"kfab server not ready after {STARTUP_DEADLINE}s:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGTERM (the clean stop), SIGKILL only if it does not stop in time; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


@pytest.fixture(scope="session")
def kfab_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kfab-server")
    proc, server = start_server(data_dir)
    try:
        yield server
    finally:
        stop_server(proc)


def run_kubectl(kubeconfig: Path | str, *args: str, input: str | None = None, check: bool = False,
                env: dict | None = None, timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess:
    """Real kubectl with `kubeconfig` (never the caller's $KUBECONFIG); AssertionError on failure if `check`."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("KUBECONFIG", None)
    result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=input,
                            capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def wait_until(condition, what: str, timeout: float = 30.0, interval: float = 0.1):
    """tests.waiting.wait_until in this module's older argument order (new tests: call that one)."""
    return waiting.wait_until(what, condition, timeout, interval)


def exists(read) -> bool:
    """Whether the official client's read() finds the object (False on 404, other errors raised)."""
    from kubernetes import client

    try:
        read()
        return True
    except client.ApiException as e:
        if e.status == 404:
            return False
        raise


def user_kubeconfig(data_dir: Path | str, out_dir: Path, user: str, *groups: str, server: str = "") -> Path:
    """`kfab kubeconfig --user USER [--group G]...`: what an admin hands a user (a certificate, CN=user, O=groups)."""
    out = out_dir / f"{user.replace(':', '-')}.kubeconfig"
    args = [sys.executable, "-m", "kfab", "kubeconfig", "--data-dir", str(data_dir), "--user", user, "-o", str(out)]
    for group in groups:
        args += ["--group", group]
    if server:
        args += ["--server", server]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, f"kfab kubeconfig --user {user} exited {proc.returncode}: {proc.stderr}{proc.stdout}"
    return out


def service_account_kubeconfig(admin: Path, url: str, ca: Path, out_dir: Path, namespace: str, name: str) -> Path:
    """A kubeconfig with only a `kubectl create token` bearer token: what a pod of that ServiceAccount has."""
    run_kubectl(admin, "create", "serviceaccount", name, "-n", namespace)  # already there: fine
    token = run_kubectl(admin, "create", "token", name, "-n", namespace, "--duration", "1h", check=True).stdout
    return write_kubeconfig(out_dir / f"sa-{namespace}-{name}.kubeconfig", url, Path(ca).read_bytes(),
                            token=token.strip(), user=f"{namespace}-{name}")


@pytest.fixture(scope="session")
def kubectl(kfab_server):
    def run(*args: str, input: str | None = None, check: bool = True, env: dict | None = None,
            timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess:
        return run_kubectl(kfab_server.kubeconfig, *args, input=input, check=check, env=env, timeout=timeout)
    return run


@pytest.fixture(scope="session")
def k8s(kfab_server):
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kfab_server.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(k8s):
    from kubernetes import client

    name = f"t-{secrets.token_hex(4)}"
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": name}})
    # as the e2e framework's namespace: ready once the controllers have put in what every namespace holds (the
    # `default` ServiceAccount, the kube-root-ca.crt ConfigMap), so no test sees them appear halfway through
    waiting.wait_until(f"the default ServiceAccount and kube-root-ca.crt in {name}",
                       lambda: exists(lambda: core.read_namespaced_service_account("default", name))
                       and exists(lambda: core.read_namespaced_config_map("kube-root-ca.crt", name)),
                       interval=0.05)
    yield name
    try:
        client.CoreV1Api(k8s).delete_namespace(name)
    except client.ApiException as e:
        if e.status != 404:
            raise
