"""Cost of encrypting Secrets at rest: Secret create and get latency (p50/p99) through a real `kfab server`,
with the default AES-GCM EncryptionConfiguration and with encryption off (identity first), side by side (both
servers at once, requests interleaved); then the in-process cost of sealing and opening one Secret (the
end-to-end figures drown it in a loaded machine).

Usage: .venv/bin/python bench/secrets_at_rest.py [--secrets N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client, config  # noqa: E402

from kfab.pki.encryption import EncryptionConfig  # noqa: E402
from kfab.store.encryption import Transformer  # noqa: E402
from tests.api.conftest import start_server, stop_server  # noqa: E402


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


VALUE = {"password": "c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA="}  # base64 of a 22-byte secret


def measure(dirs: dict[str, Path], count: int) -> dict[str, dict[str, list[float]]]:
    """Both servers run at once and take turns request by request (which goes first alternates), so the
    shared machine's load falls on both alike."""
    procs, apis = [], {}
    try:
        for name, data_dir in dirs.items():
            proc, server = start_server(data_dir, "--disable-controllers")
            procs.append(proc)
            apis[name] = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
        for api in apis.values():
            for i in range(20):  # warm-up: connections, first-request paths
                api.create_namespaced_secret("default", {"metadata": {"name": f"warm-{i}"}, "data": VALUE})
        times = {name: {"create": [], "get": []} for name in apis}
        order = list(apis)
        for verb in ("create", "get"):
            for i in range(count):
                for name in (order if i % 2 else order[::-1]):
                    api = apis[name]
                    t = time.perf_counter()
                    if verb == "create":
                        api.create_namespaced_secret("default", {"metadata": {"name": f"s-{i}"}, "data": VALUE})
                    else:
                        api.read_namespaced_secret(f"s-{i}", "default")
                    times[name][verb].append(time.perf_counter() - t)
        return times
    finally:
        for proc in procs:
            stop_server(proc)


def seal_cost(n: int = 20000) -> tuple[float, float]:
    transformer = Transformer(EncryptionConfig.new())
    key = "/registry/secrets/default/db"
    value = (b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"},'
             b'"data":{"password":"c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA="}}')
    started = time.process_time()  # CPU time: the wall clock counts the other processes of a loaded machine
    for _ in range(n):
        sealed = transformer.encrypt(key, value)
    sealing = (time.process_time() - started) / n * 1e6
    started = time.process_time()
    for _ in range(n):
        transformer.decrypt(key, sealed)
    return sealing, (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain_dir, encrypted_dir = Path(tmp) / "plain", Path(tmp) / "encrypted"
        (plain_dir / "pki").mkdir(parents=True)
        encrypted_dir.mkdir()
        off = EncryptionConfig.new()
        off.entries[0].identity_first = True  # kube's way to turn encryption off: identity writes
        off.save(plain_dir / "pki" / "encryption-config.yaml")
        results = measure({"identity (off)": plain_dir, "aesgcm (default)": encrypted_dir}, args.secrets)
    print(f"Secret latency through kfab server, {args.secrets} Secrets, one client, sequential, the two servers "
          "taking turns (ms)")
    print(f"{'provider':<18} {'create p50':>10} {'create p99':>10} {'get p50':>8} {'get p99':>8}")
    for name, times in results.items():
        print(f"{name:<18} {p(times['create'], 50):>10.2f} {p(times['create'], 99):>10.2f} "
              f"{p(times['get'], 50):>8.2f} {p(times['get'], 99):>8.2f}")
    sealing, opening = seal_cost()
    print(f"one Secret sealed: {sealing:.1f} us, opened: {opening:.1f} us CPU (AES-GCM, in process)")


if __name__ == "__main__":
    main()
