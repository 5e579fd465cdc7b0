"""`kfab rotate-encryption-key -i INVENTORY`: a new key for Secrets at rest, rolled out with the cluster serving.

kube's documented rotation, one API server at a time (each step reaches every control-plane host, its API
server restarted and ready, before the next step begins):
  1. the new key added as a read key (every API server can read what any of them will write with it);
  2. the new key first: it writes; each API server re-encrypts stale Secrets when it starts, and the rollout
     waits until the store holds no Secret under another key;
  3. the old keys dropped.
The cluster's EncryptionConfiguration lives in kfab_pki_dir on this machine (role pki puts it on every
control-plane host), so a later `kfab up` keeps the rotated keys. Interrupted, it can be run again: the file
on this machine keeps every key a stored Secret may use until step 3, so a new run starts over safely.
"""

from __future__ import annotations

import sys
import time

from kfab.ops.backup import ensure_etcdctl, etcd_local, store, wait_api
from kfab.ops.cluster import Cluster, OpsError
from kfab.ops.nodes import log
from kfab.pki.encryption import CONFIG_FILE, EncryptionConfig, EncryptionConfigError
from kfab.provision.modules.base import q

REENCRYPT_TIMEOUT = 180.0
# Counts stored Secrets not written with key NAME; argv: sqlite|etcd, NAME, the state.db path (sqlite).
STALE_COUNT = r"""
import base64, json, sqlite3, sys
kind, name = sys.argv[1], sys.argv[2].encode()
prefix = b"k8s:enc:aesgcm:v1:" + name + b":"
if kind == "sqlite":
    db = sqlite3.connect("file:" + sys.argv[3] + "?mode=ro", uri=True)
    values = [bytes(v) for (v,) in db.execute("SELECT value FROM kv WHERE key >= '/registry/secrets/' "
                                              "AND key < '/registry/secrets0'")]
else:
    values = [base64.b64decode(kv["value"]) for kv in json.load(sys.stdin).get("kvs", [])]
print(sum(1 for v in values if not v.startswith(prefix)))
"""


def _push(cluster: Cluster, config: EncryptionConfig, step: str) -> None:
    """The configuration to every control-plane host, then its API server restarted and ready, one at a time."""
    body = config.dump()
    for host in cluster.control_plane:
        path = f"{cluster.var(host, 'kfab_data_dir', '/var/lib/kfab')}/pki/{CONFIG_FILE}"
        with cluster.ssh(host) as remote:
            tmp = f"{path}.new"
            with remote.conn.sftp().open(tmp, "wb") as f:
                f.chmod(0o600)
                f.write(body)
            cluster.run(remote, f"chmod 600 {q(tmp)} && mv {q(tmp)} {q(path)}", f"writing {path}")
            cluster.run(remote, "systemctl restart kfab-apiserver.service", "restarting kfab-apiserver")
            wait_api(cluster, remote, host)
        log(f"--- {host}: {step}")


def _stale(cluster: Cluster, key_name: str) -> int:
    backend, path = store(cluster)
    if backend == "sqlite":
        host = cluster.control_plane[0]
        with cluster.ssh(host) as remote:
            return int(cluster.run(remote, f"python3 -c {q(STALE_COUNT)} sqlite {q(key_name)} {q(path)}",
                                   "counting Secrets under an old key").stdout.strip())
    host = cluster.group("etcd")[0]
    with cluster.ssh(host) as remote:
        url, tls = etcd_local(cluster, host)
        ensure_etcdctl(cluster, remote)
        return int(cluster.run(remote, f"ETCDCTL_API=3 etcdctl --endpoints={url} {tls} get --prefix /registry/secrets/ "
                                       f"-w json | python3 -c {q(STALE_COUNT)} etcd {q(key_name)}",
                               "counting Secrets under an old key").stdout.strip())


def rotate(cluster: Cluster) -> str:
    path = cluster.pki_dir / CONFIG_FILE
    if not path.is_file():
        raise OpsError(f"{path}: no encryption configuration: is the cluster of {cluster.inventory_path} installed "
                       "from this machine by a kfab with encryption at rest?")
    try:
        current = EncryptionConfig.load(path)
    except EncryptionConfigError as e:
        raise OpsError(str(e)) from None
    for host in cluster.control_plane:
        cluster.connect(host).close()  # every control-plane host reachable before anything changes
    new = current.with_new_write_key()
    new_name = new.entries[0].keys[0].name
    # 1. read key everywhere first (written locally first: a run cut short restarts from here)
    reading = new.with_write_key_reading_only()
    reading.save(path)
    _push(cluster, reading, f"can read Secrets encrypted with {new_name}")
    # 2. the new key writes; every API server re-encrypts at start; wait for the store to hold no old value
    new.save(path)
    _push(cluster, new, f"encrypts with {new_name}")
    deadline = time.monotonic() + REENCRYPT_TIMEOUT
    while (left := _stale(cluster, new_name)) > 0:
        if time.monotonic() > deadline:
            raise OpsError(f"{left} Secrets still under an old key after {REENCRYPT_TIMEOUT:.0f} s; run "
                           "`kfab rotate-encryption-key` again (the old keys are kept until none is used)")
        time.sleep(2)
    # 3. the old keys go
    final = new.without_old_keys()
    final.save(path)
    _push(cluster, final, "old keys removed")
    return new_name


def run(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook, args.extra_vars)
        name = rotate(cluster)
    except OpsError as exc:
        print(f"kfab rotate-encryption-key: {exc}", file=sys.stderr)
        return 1
    log(f"cluster {cluster.name}: Secrets at rest now encrypted with {name} only")
    return 0
