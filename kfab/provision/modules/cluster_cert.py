"""cluster_cert: a certificate signed by the cluster CA, made on the machine running kfab and put on the host.

The CA lives only in `pki_dir` on the control machine (created on first use, mode 0700/0600), as the
issue asks: hosts never generate keys, and a lost host loses nothing. Each issued pair is kept in
`pki_dir/issued/<name>.{crt,key,json}` and reused while its request (CN, groups, names, usage) is
unchanged, it chains to the CA and is not near expiry — so a second run puts the same bytes: `ok`.

What goes to the host (each optional): `cert`/`key` files, the CA certificate (`ca_cert`), the CA key
(`ca_key`, for control-plane hosts whose API server issues its own client certificates), the key that
signs ServiceAccount tokens (`sa_key`: one per cluster, made next to the CA, so every API server verifies
the tokens the others issued), the EncryptionConfiguration of Secrets at rest (`encryption_config`: one per
cluster too, so every API server reads what the others encrypted), and a
`kubeconfig` embedding the pair for `server`. `local_kubeconfig` also writes that kubeconfig on the
control machine (the admin's). Private keys are written 0600 and never shown: their diff reads
"<private key>" (the runner prints diffs as given). In check mode nothing is saved locally.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

from kfab.pki import ca as ca_mod
from kfab.pki.encryption import CONFIG_FILE as ENCRYPTION_CONFIG_FILE
from kfab.pki.encryption import EncryptionConfig
from kfab.pki.kubeconfig import kubeconfig
from kfab.provision.modules.base import (Arg, Command, Diff, Fail, Module, PutFile, Result, as_bool, as_list,
                                        octal_mode, q)

RENEW_BEFORE = datetime.timedelta(days=30)
SECRET = "<private key, not shown>\n"
NEW_SECRET = "<new private key, not shown>\n"
_lock = threading.Lock()   # hosts run in threads: one CA, one issue of each pair


@contextmanager
def _pki_lock(pki_dir: Path):
    with _lock:
        pki_dir.mkdir(parents=True, exist_ok=True)
        pki_dir.chmod(0o700)
        with open(pki_dir / ".lock", "w") as f:   # and other kfab processes on this machine
            fcntl.flock(f, fcntl.LOCK_EX)
            yield


def _ca(pki_dir: Path, save: bool) -> ca_mod.KeyPair:
    cert, key = pki_dir / "ca.crt", pki_dir / "ca.key"
    if cert.exists() or key.exists():
        return ca_mod.load(cert, key)
    pair = ca_mod.new_ca()
    if save:
        ca_mod.save(pair, cert, key)
    return pair


def _service_account_key(pki_dir: Path, save: bool) -> bytes:
    path = pki_dir / "sa.key"
    if path.exists():
        return path.read_bytes()
    pem = ca_mod.key_to_pem(ca_mod.new_key())
    if save:
        ca_mod.write_private(path, pem)
    return pem


def _encryption_config(pki_dir: Path, save: bool) -> bytes:
    """The cluster's EncryptionConfiguration (Secrets at rest), one per cluster like sa.key: every API server
    must read what the others wrote. `kfab rotate-encryption-key -i` changes it here first."""
    path = pki_dir / ENCRYPTION_CONFIG_FILE
    if path.exists():
        return path.read_bytes()
    config = EncryptionConfig.new()
    if save:
        config.save(path)
    return config.dump()


def _issued(pki_dir: Path, ca: ca_mod.KeyPair, name: str, request: dict, save: bool) -> ca_mod.KeyPair:
    base = pki_dir / "issued" / name
    crt, key, spec = base.with_suffix(".crt"), base.with_suffix(".key"), base.with_suffix(".json")
    if crt.exists() and key.exists() and spec.exists() and json.loads(spec.read_text()) == request:
        pair = ca_mod.load(crt, key)
        left = pair.cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
        if ca_mod.signed_by(pair.cert, ca.cert) and left > RENEW_BEFORE:
            return pair
    pair = ca_mod.issue(ca, request["cn"], tuple(request["groups"]), server_names=tuple(request["dns"]),
                        server_ips=tuple(request["ips"]), client=request["client"])
    if save:
        ca_mod.save(pair, crt, key)
        ca_mod.write_private(spec, (json.dumps(request, sort_keys=True) + "\n").encode())
    return pair


def _put(host, path: str, content: bytes, mode: str, secret: bool):
    """put_file's shape, but a private key's content never reaches a diff."""
    current = host.file(path, content=True)
    if current is not None and current.kind != "file":
        yield Fail(f"{path} exists and is a {current.kind}, not a file")
        return
    if current is None or current.content != content:
        if secret:
            yield Diff(path, SECRET if current else "", NEW_SECRET)
        else:
            yield Diff(path, (current.content or b"").decode(errors="replace") if current else "", content.decode())
        # A file kept by its owner (e.g. etcd's key, chowned to etcd) stays theirs when reissued.
        yield PutFile(path, content, mode, current.owner if current else None, current.group if current else None)
    elif current.mode != mode:
        yield Command(f"chmod {mode} {q(path)}")


def plan(args, host, files):
    name = str(args["name"] or "")
    if not name or name.startswith("/") or ".." in Path(name).parts:
        yield Fail(f"name must be a relative path such as 'kt1/apiserver', got {name!r}")
        return
    if not args["cn"]:
        yield Fail("cn (the certificate's common name / user) is required")
        return
    if args["kubeconfig"] or args["local_kubeconfig"]:
        if not args["server"]:
            yield Fail("kubeconfig/local_kubeconfig need 'server' (https://HOST:PORT)")
            return
    pki_dir = Path(os.path.expanduser(str(args["pki_dir"])))
    request = {"cn": str(args["cn"]), "groups": [str(g) for g in as_list(args["groups"])],
               "dns": [str(d) for d in as_list(args["dns"])], "ips": [str(i) for i in as_list(args["ips"])],
               "client": as_bool(args["client"])}
    if not (request["dns"] or request["ips"] or request["client"]):
        yield Fail("a certificate needs server names (dns/ips), client: true, or both")
        return
    save = not host.check
    try:
        with _pki_lock(pki_dir):
            ca = _ca(pki_dir, save)
            pair = _issued(pki_dir, ca, name, request, save)
            sa_key = _service_account_key(pki_dir, save) if args["sa_key"] else None
            encryption = _encryption_config(pki_dir, save) if args["encryption_config"] else None
    except (ca_mod.PKIError, ValueError) as exc:
        yield Fail(str(exc))
        return
    mode = octal_mode(args["mode"]) or "0644"
    if args["ca_cert"]:
        yield from _put(host, str(args["ca_cert"]), ca.cert_pem, mode, False)
    if args["ca_key"]:
        yield from _put(host, str(args["ca_key"]), ca.key_pem, "0600", True)
    if sa_key is not None:
        yield from _put(host, str(args["sa_key"]), sa_key, "0600", True)
    if encryption is not None:
        yield from _put(host, str(args["encryption_config"]), encryption, "0600", True)
    if args["cert"]:
        yield from _put(host, str(args["cert"]), pair.cert_pem, mode, False)
    if args["key"]:
        yield from _put(host, str(args["key"]), pair.key_pem, "0600", True)
    if args["kubeconfig"] or args["local_kubeconfig"]:
        text = yaml.safe_dump(kubeconfig(str(args["server"]), ca.cert_pem, pair.cert_pem, pair.key_pem,
                                         user=request["cn"]), sort_keys=False).encode()
        if args["kubeconfig"]:
            yield from _put(host, str(args["kubeconfig"]), text, "0600", True)
        if args["local_kubeconfig"]:
            local = Path(os.path.expanduser(str(args["local_kubeconfig"])))
            if save and (not local.exists() or local.read_bytes() != text):
                ca_mod.write_private(local, text)
            yield Result({"local_kubeconfig": str(local),
                          "next_steps": [f"Admin kubeconfig: {local}",
                                         f"Next: kubectl --kubeconfig {local} get nodes -o wide"]})


MODULE = Module("cluster_cert", plan, {
    "pki_dir": Arg(required=True), "name": Arg(required=True), "cn": Arg(required=True),
    "groups": Arg(default=[]), "dns": Arg(default=[]), "ips": Arg(default=[]), "client": Arg(default=False),
    "cert": Arg(), "key": Arg(), "ca_cert": Arg(), "ca_key": Arg(), "sa_key": Arg(), "encryption_config": Arg(),
    "mode": Arg(),
    "kubeconfig": Arg(), "server": Arg(), "local_kubeconfig": Arg(),
}, doc="a certificate from the cluster CA kept on the control machine (pki_dir), put on the host")
