"""What the HA lab test and bench/vip_failover.py share: who holds the API's virtual IP, and a writer that keeps
creating ConfigMaps through one API address, remembering which creates were acknowledged and when, so that a
fault's outage (the fault -> the first write acknowledged after it) and lost writes can be measured."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kfab.lab.errors import LabError

VIP_LEASE = ("kube-system", "kfab-control-plane-vip")


def vip_holders(lab, hosts: list[str], vip: str) -> list[str]:
    """The hosts that have `vip` on an interface (one, when all is well)."""
    out = []
    for host in hosts:
        proc = lab.ssh(host, "ip -o -4 addr show", timeout=30)
        if proc.returncode == 0 and f" {vip}/32 " in proc.stdout:
            out.append(host)
    return out


def wait_api_ready(lab, host: str, timeout: float = 180.0) -> None:
    """Until `host`'s own API server answers /readyz (after a restart of it or of the host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = lab.ssh(host, "curl -sk --max-time 2 https://127.0.0.1:6443/readyz", timeout=30)
        if proc.stdout.strip() == "ok":
            return
        time.sleep(2)
    raise AssertionError(f"{host}: API server not ready within {timeout}s")


def power_on(lab, host: str) -> None:
    """`kfab lab start HOST`; once more through a power cycle when the boot hangs before SSH (seen once on a
    loaded machine: every unit of the booting host waiting, none running, for minutes)."""
    try:
        lab.start(host)
    except LabError as e:
        print(f"{host} did not come back ({e}); power-cycling it once more", flush=True)
        lab.restart(host, kill=True)


def api_client(kubeconfig: Path, server: str | None = None) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=cfg)
    if server:
        cfg.host = server
    cfg.retries = False  # urllib3 would retry inside one call and hide the outage
    return client.ApiClient(cfg)


class Writer:
    """Creates ConfigMaps w-0, w-1, ... in `namespace` one after another (a short timeout each) until stopped."""

    def __init__(self, api: client.ApiClient, namespace: str, timeout: tuple[float, float] = (0.5, 2.0)):
        self.core = client.CoreV1Api(api)
        self.namespace, self.timeout = namespace, timeout
        self.acked: dict[str, float] = {}   # name -> monotonic time the create was acknowledged
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            name = f"w-{n}"
            n += 1
            body = {"metadata": {"name": name}, "data": {"n": str(n)}}
            try:
                self.core.create_namespaced_config_map(self.namespace, body, _request_timeout=self.timeout)
                self.acked[name] = time.monotonic()
            except (ApiException, OSError, Exception):  # noqa: BLE001 - any failure is an unacknowledged write
                self.failures += 1
                time.sleep(0.05)

    def __enter__(self) -> "Writer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_for_acks(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acked)} of {count} writes acknowledged in {timeout}s")
            time.sleep(0.05)

    def first_ack_after(self, t: float, timeout: float) -> float:
        """Seconds from `t` to the first write acknowledged after it."""
        deadline = t + timeout
        while time.monotonic() < deadline:
            after = [at for at in list(self.acked.values()) if at > t]
            if after:
                return min(after) - t
            time.sleep(0.02)
        raise AssertionError(f"no write acknowledged within {timeout}s of the fault ({self.failures} failed)")

    def lost(self) -> list[str]:
        """Acknowledged writes the API does not have (read back through the same address)."""
        names = {cm.metadata.name for cm in self.core.list_namespaced_config_map(self.namespace).items}
        return sorted(set(self.acked) - names)


def outage(writer: Writer, fault, timeout: float = 60.0) -> float:
    """Run `fault()` while `writer` writes; seconds from the start of the fault to the first write acknowledged
    after `fault()` returned (it returns once the fault is done: the host is off, the server stopped)."""
    writer.wait_for_acks(len(writer.acked) + 5)
    start = time.monotonic()
    fault()
    done = time.monotonic()
    seconds = done - start + writer.first_ack_after(done, timeout)
    writer.wait_for_acks(len(writer.acked) + 5)
    return seconds
