"""Checks for secrets on a lab cluster (issue 16): the cluster's encryption keys and private keys on this
machine, whether a text leaks any of them, `strings` over a file, a lab host's output through podman exec,
and how many stored Secrets are under a given key."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

# Counts the Secrets in a SQLite state store and those written with key NAME; argv: the state.db path, NAME.
COUNT_SECRETS = """\
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
rows = [bytes(v) for (v,) in db.execute("SELECT value FROM kv WHERE key >= '/registry/secrets/' "
                                        "AND key < '/registry/secrets0'")]
prefix = b"k8s:enc:aesgcm:v1:" + sys.argv[2].encode() + b":"
print(len(rows), sum(v.startswith(prefix) for v in rows))
"""


def encryption_keys(pki: Path) -> dict[str, str]:
    """name -> base64 secret of every aesgcm key in the cluster's EncryptionConfiguration on this machine."""
    config = yaml.safe_load((pki / "encryption-config.yaml").read_text())
    return {k["name"]: k["secret"] for r in config["resources"] for p in r["providers"]
            for k in (p.get("aesgcm") or {}).get("keys", [])}


def key_material(pki: Path) -> set[str]:
    """What must never be printed: each private key's base64 lines (CA, ServiceAccount signer, every issued
    client/serving key) and the encryption secrets."""
    found = set(encryption_keys(pki).values())
    for path in pki.rglob("*.key"):
        found.update(line for line in path.read_text().splitlines()
                     if len(line) >= 20 and not line.startswith("-----"))
    return found


def leaks(text: str, material) -> list[str]:
    """The pieces of `material` found in `text`, shortened so that a failure does not print them whole."""
    return [m[:12] + "..." for m in material if m in text]


def host_output(host: str, cmd: str) -> str:
    """`cmd`'s output on a lab host through podman exec: journals and logs can be megabytes, more than an SSH
    session's text should carry."""
    proc = subprocess.run(["podman", "exec", host, "sh", "-c", cmd], capture_output=True, timeout=300)
    return proc.stdout.decode(errors="replace")


def strings(path: Path) -> str:
    return subprocess.run(["strings", "-n", "6", str(path)], capture_output=True, text=True, check=True).stdout


def secrets_under(host: str, state_db: str, key_name: str) -> tuple[int, int]:
    """(stored Secrets, those written with key_name) in the SQLite store on `host`."""
    out = host_output(host, f"python3 -c {shlex.quote(COUNT_SECRETS)} {shlex.quote(state_db)} {shlex.quote(key_name)}")
    total, under = out.split()
    return int(total), int(under)
