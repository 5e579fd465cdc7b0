"""Cost of encrypting Secrets at rest: Secret create and get latency (p50/p99) through a real `kfab server`,
with the default AES-GCM EncryptionConfiguration and with encryption off (identity first), side by side; then
the in-process cost of sealing and opening one Secret (the end-to-end figures drown it in a loaded machine).

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


def measure(data_dir: Path, count: int, *extra: str) -> dict[str, list[float]]:
    proc, server = start_server(data_dir, "--disable-controllers", *extra)
    try:
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
        value = {"password": "c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA="}  # base64 of a 22-byte secret
        for i in range(20):  # warm-up: connections, first-request paths
            api.create_namespaced_secret("default", {"metadata": {"name": f"warm-{i}"}, "data": value})
        times: dict[str, list[float]] = {"create": [], "get": []}
        for i in range(count):
            t = time.perf_counter()
            api.create_namespaced_secret("default", {"metadata": {"name": f"s-{i}"}, "data": value})
            times["create"].append(time.perf_counter() - t)
        for i in range(count):
            t = time.perf_counter()
            api.read_namespaced_secret(f"s-{i}", "default")
            times["get"].append(time.perf_counter() - t)
        return times
    finally:
        stop_server(proc)


def seal_cost(n: int = 20000) -> tuple[float, float]:
    transformer = Transformer(EncryptionConfig.new())
    key = "/registry/secrets/default/db"
    value = (b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"},'
             b'"data":{"password":"c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA="}}')
    started = time.perf_counter()
    for _ in range(n):
        sealed = transformer.encrypt(key, value)
    sealing = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        transformer.decrypt(key, sealed)
    return sealing, (time.perf_counter() - started) / n * 1e6


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
        results = {"identity (off)": measure(plain_dir, args.secrets),
                   "aesgcm (default)": measure(encrypted_dir, args.secrets)}
    print(f"Secret latency through kfab server, {args.secrets} Secrets, one client, sequential (ms)")
    print(f"{'provider':<18} {'create p50':>10} {'create p99':>10} {'get p50':>8} {'get p99':>8}")
    for name, times in results.items():
        print(f"{name:<18} {p(times['create'], 50):>10.2f} {p(times['create'], 99):>10.2f} "
              f"{p(times['get'], 50):>8.2f} {p(times['get'], 99):>8.2f}")
    sealing, opening = seal_cost()
    print(f"one Secret sealed: {sealing:.1f} us, opened: {opening:.1f} us (AES-GCM, in process)")


if __name__ == "__main__":
    main()
