"""Secrets at rest: the state files are the owner's only, Secret values never reach them in clear (`strings`
finds nothing), a Secret stored in plaintext by an older kfab still reads and gets encrypted, and
`kfab rotate-encryption-key` moves every Secret to a new key and forgets the old one."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sqlite3
import stat
import subprocess
import sys

import pytest
import yaml

from kfab.store import open_store
from tests.api.conftest import REPO, run_kubectl, start_server, stop_server
from tests.waiting import wait_until


def _strings(path) -> str:
    return subprocess.run(["strings", "-n", "6", str(path)], capture_output=True, text=True, check=True).stdout


def _state_files(data_dir):
    return [p for p in data_dir.iterdir() if p.name.startswith("state.db")]


def _stored_value(data_dir, key: str) -> bytes:
    with sqlite3.connect(f"file:{data_dir / 'state.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()[0]


def _write_plaintext_secret(data_dir, name: str, value: str) -> None:
    """What a kfab from before encryption at rest stored: the Secret's JSON as it is."""
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": name, "namespace": "default", "uid": "0b5cf7d5-old0-4bd0-9a6a-000000000001",
                           "creationTimestamp": "2026-01-01T00:00:00Z"},
              "data": {"password": base64.b64encode(value.encode()).decode()}}

    async def write():
        store = await open_store(f"sqlite:///{data_dir / 'state.db'}")
        try:
            await store.create(f"/registry/secrets/default/{name}", json.dumps(secret).encode())
        finally:
            await store.close()
    asyncio.run(write())


@pytest.fixture
def fresh_dir(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    return data_dir


def test_secret_values_never_reach_the_state_files_and_files_are_private(fresh_dir):
    old_value = f"old-{secrets.token_hex(8)}"
    _write_plaintext_secret(fresh_dir, "legacy", old_value)  # the state of an install before this feature
    proc, server = start_server(fresh_dir, "--disable-controllers")
    try:
        kubeconfig = server.kubeconfig
        value = f"sekrit-{secrets.token_hex(8)}"
        run_kubectl(kubeconfig, "create", "secret", "generic", "db", f"--from-literal=password={value}",
                    check=True)
        got = run_kubectl(kubeconfig, "get", "secret", "db", "-o", "jsonpath={.data.password}", check=True)
        assert base64.b64decode(got.stdout).decode() == value
        got = run_kubectl(kubeconfig, "get", "secret", "legacy", "-o", "jsonpath={.data.password}", check=True)
        assert base64.b64decode(got.stdout).decode() == old_value, "a plaintext Secret from before still reads"
        wait_until("the old plaintext Secret re-encrypted at start",
                   lambda: _stored_value(fresh_dir, "/registry/secrets/default/legacy").startswith(
            b"k8s:enc:aesgcm:v1:key1:"))

        stored = _stored_value(fresh_dir, "/registry/secrets/default/db")
        assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:")
        encoded = base64.b64encode(value.encode()).decode()
        for path in _state_files(fresh_dir):
            text = _strings(path)
            assert value not in text and encoded not in text, f"{path.name} holds the Secret's value"
        # files and directory: for the owner only
        assert stat.S_IMODE(fresh_dir.stat().st_mode) == 0o700
        for path in [*_state_files(fresh_dir), *(fresh_dir / "pki").iterdir()]:
            if path.suffix != ".crt":
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        config = yaml.safe_load((fresh_dir / "pki" / "encryption-config.yaml").read_text())
        assert config["kind"] == "EncryptionConfiguration"
        assert [list(p) for p in config["resources"][0]["providers"]] == [["aesgcm"], ["identity"]]
    finally:
        stop_server(proc)

    # key rotation with the server stopped; the Secret is read back with the new key only
    result = subprocess.run([sys.executable, "-m", "kfab", "rotate-encryption-key", "--data-dir", str(fresh_dir)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "2 stored objects re-encrypted" in result.stdout
    config = yaml.safe_load((fresh_dir / "pki" / "encryption-config.yaml").read_text())
    assert [k["name"] for k in config["resources"][0]["providers"][0]["aesgcm"]["keys"]] == ["key2"]
    assert _stored_value(fresh_dir, "/registry/secrets/default/db").startswith(b"k8s:enc:aesgcm:v1:key2:")
    proc, server = start_server(fresh_dir, "--disable-controllers")
    try:
        got = run_kubectl(server.kubeconfig, "get", "secret", "db", "-o", "jsonpath={.data.password}", check=True)
        assert base64.b64decode(got.stdout).decode() == value
        # while the server runs, the store is its own: rotation is refused, nothing changes
        refused = subprocess.run([sys.executable, "-m", "kfab", "rotate-encryption-key", "--data-dir",
                                  str(fresh_dir)], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert refused.returncode == 1 and "already in use" in refused.stderr
    finally:
        stop_server(proc)


def test_an_api_server_with_another_key_refuses_to_start_rather_than_serve_500s(fresh_dir, tmp_path):
    proc, server = start_server(fresh_dir, "--disable-controllers")
    try:
        run_kubectl(server.kubeconfig, "create", "secret", "generic", "db", "--from-literal=pw=x", check=True)
    finally:
        stop_server(proc)
    # a second API server over the same store with a data directory (and so a key) of its own
    other = tmp_path / "other"
    result = subprocess.run([sys.executable, "-m", "kfab", "apiserver", "--store",
                             f"sqlite:///{fresh_dir / 'state.db'}", "--data-dir", str(other), "--port", "0"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert "/registry/secrets/default/db) are encrypted with a key" in result.stderr
    assert "every API server of a cluster needs the same encryption configuration" in result.stderr
