"""SSH connections (one Fabric Connection per host) with host keys checked against a known_hosts file,
and ~/.ssh/config honoured as OpenSSH (so Ansible) does: HostName, User, Port, IdentityFile and ProxyJump
for the host's address, below what the inventory sets (ansible_user, ansible_port, ...).

An unknown key is refused, naming host and fingerprint, unless the inventory sets
`kfab_host_key_checking: accept-new` (trust on first use: the key is recorded and the run goes on).
A key that differs from the recorded one is always refused."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import fabric
import paramiko

from kfab.provision.context import resolve_path
from kfab.provision.errors import HostUnreachable

HOST_KEY_POLICIES = ("strict", "accept-new")


def fingerprint(key: paramiko.PKey) -> str:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass
class Target:
    """Where and how to reach one host (from its resolved inventory variables)."""
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    host_key_checking: str = "strict"
    timeout: float = 10.0
    jump: "Target | None" = None     # ProxyJump: reached through this host's SSH connection
    password: str | None = field(default=None, repr=False)   # ansible_password: password login when asked


def target_from_vars(host: str, v, base: Path) -> Target:
    """The Target of an inventory host from its resolved variables (ansible_host, ansible_port, ansible_user,
    ansible_ssh_private_key_file, kfab_known_hosts_file, kfab_host_key_checking, kfab_ssh_timeout; relative
    paths from the inventory's directory `base`), with ~/.ssh/config (or kfab_ssh_config) below them.
    A bad port or timeout raises ValueError or TypeError."""
    key = v.get("ansible_ssh_private_key_file")
    target = Target(
        name=host, address=str(v.get("ansible_host", host)), port=int(v.get("ansible_port", 22)),
        user=str(v.get("ansible_user", "root")), key_file=resolve_path(key, base) if key else None,
        known_hosts=resolve_path(v.get("kfab_known_hosts_file", "~/.ssh/known_hosts"), base),
        host_key_checking=str(v.get("kfab_host_key_checking", "strict")),
        timeout=float(v.get("kfab_ssh_timeout", 10)),
        password=None if v.get("ansible_password", v.get("ansible_ssh_pass")) is None
        else str(v.get("ansible_password", v.get("ansible_ssh_pass"))))
    explicit = {attr for attr, name in (("user", "ansible_user"), ("port", "ansible_port"),
                                        ("key_file", "ansible_ssh_private_key_file")) if name in v}
    return with_ssh_config(target, resolve_path(v.get("kfab_ssh_config", "~/.ssh/config"), base), explicit)


def with_ssh_config(target: Target, config_file: str, explicit: set[str]) -> Target:
    """The target with what ~/.ssh/config says for its address filled in where the inventory is silent
    (`explicit`: the fields the inventory set). ProxyJump hops are looked up the same way."""
    path = Path(os.path.expanduser(config_file))
    if not path.is_file():
        return target
    try:
        config = paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ConfigParseError) as exc:
        raise HostUnreachable(f"{path}: {exc}") from None
    return _configured(target, config, explicit, depth=0)


def _configured(target: Target, config: paramiko.SSHConfig, explicit: set[str], depth: int) -> Target:
    found = config.lookup(target.address)
    result = Target(**{**vars(target)})
    result.address = found.get("hostname", target.address)
    if "user" not in explicit and "user" in found:
        result.user = found["user"]
    if "port" not in explicit and "port" in found:
        result.port = int(found["port"])
    if "key_file" not in explicit and found.get("identityfile"):
        existing = [f for f in found["identityfile"] if os.path.isfile(os.path.expanduser(f))]
        result.key_file = existing[0] if existing else None
    jumps = found.get("proxyjump")
    if jumps and jumps.lower() != "none":
        if depth > 8:
            raise HostUnreachable(f"ProxyJump chain for {target.name} is longer than 8 hops")
        # "a,b": through a, then b, then the target: the last hop is the one next to the target.
        hop: Target | None = None
        for spec in jumps.split(","):
            user, _, rest = spec.strip().rpartition("@")
            host, _, port = rest.partition(":")
            nxt = Target(name=f"{host} (ProxyJump)", address=host, port=int(port) if port else 22,
                         user=user or target.user, known_hosts=target.known_hosts,
                         host_key_checking=target.host_key_checking, timeout=target.timeout)
            nxt = _configured(nxt, config, {k for k, v in (("user", user), ("port", port)) if v}, depth + 1)
            nxt.jump = nxt.jump or hop
            hop = nxt
        result.jump = hop
    return result


class KnownHostsFile:
    """One known_hosts file shared by all connections of a run; appends are serialised."""

    _locks: dict[str, threading.Lock] = {}
    _guard = threading.Lock()

    def __init__(self, path: str):
        self.path = Path(os.path.expanduser(path))
        with self._guard:
            self.lock = self._locks.setdefault(str(self.path), threading.Lock())

    def load_into(self, client: paramiko.SSHClient) -> None:
        with self.lock:
            if self.path.is_file():
                client.get_host_keys().load(str(self.path))

    def record(self, name: str, key: paramiko.PKey) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.path, "a") as f:
                f.write(f"{name} {key.get_name()} {key.get_base64()}\n")


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    def __init__(self, target: Target, known: KnownHostsFile):
        self.target = target
        self.known = known

    def missing_host_key(self, client, hostname, key):
        if self.target.host_key_checking == "accept-new":
            self.known.record(hostname, key)
            client.get_host_keys().add(hostname, key.get_name(), key)
            return
        raise HostUnreachable(
            f"unknown SSH host key {fingerprint(key)} for {self.target.name} "
            f"({known_hosts_name(self.target.address, self.target.port)}), not in {self.known.path}: refused "
            f"(add it to that file, or set kfab_host_key_checking: accept-new to trust it on first use)")


def connect(target: Target) -> fabric.Connection:
    """Open and authenticate a Connection, or raise HostUnreachable with one clear line."""
    conn = _connection(target)
    where = f"{target.address}:{target.port}" + (f" (through {target.jump.address})" if target.jump else "")
    try:
        try:
            conn.open()
        except BaseException:
            conn.client.close()
            raise
    except HostUnreachable:
        raise
    except paramiko.BadHostKeyException as exc:
        known = KnownHostsFile(target.known_hosts)
        raise HostUnreachable(
            f"SSH host key for {target.name} ({where}) CHANGED: the host offers {fingerprint(exc.key)}, "
            f"{known.path} has {fingerprint(exc.expected_key)}: refused (if the host was reinstalled, "
            f"remove its old line from {known.path})") from None
    except paramiko.AuthenticationException as exc:
        raise HostUnreachable(f"SSH authentication as {target.user}@{where} failed: {exc}") from None
    except (socket.timeout, TimeoutError):
        raise HostUnreachable(f"cannot connect to {where}: timed out after {target.timeout:g}s") from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        reasons = {str(e.strerror or e) for e in exc.errors.values()}
        raise HostUnreachable(f"cannot connect to {where}: {'; '.join(sorted(reasons))}") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostUnreachable(f"cannot connect to {where}: {exc or type(exc).__name__}") from None
    return conn


def _connection(target: Target) -> fabric.Connection:
    """A Connection (not yet open) with kfab's host key policy; a ProxyJump hop becomes its gateway,
    which Fabric opens first and tunnels through (direct-tcpip, as ssh -J)."""
    if target.host_key_checking not in HOST_KEY_POLICIES:
        raise HostUnreachable(f"kfab_host_key_checking must be one of {', '.join(HOST_KEY_POLICIES)}, "
                              f"got {target.host_key_checking!r}")
    connect_kwargs = {"banner_timeout": target.timeout, "auth_timeout": target.timeout}
    if target.key_file:
        key_file = os.path.expanduser(target.key_file)
        if not os.path.isfile(key_file):
            raise HostUnreachable(f"ansible_ssh_private_key_file {key_file} does not exist")
        connect_kwargs.update(key_filename=key_file, look_for_keys=False)
    if target.password is not None:
        connect_kwargs["password"] = target.password
    # load_ssh_configs=False: ~/.ssh/config was applied to the target already (with_ssh_config), below
    # what the inventory says; Fabric must not apply it again on top.
    config = fabric.Config(overrides={"load_ssh_configs": False})
    gateway = _connection(target.jump) if target.jump is not None else None
    conn = fabric.Connection(target.address, user=target.user, port=target.port, config=config,
                             connect_timeout=int(max(1, target.timeout)), connect_kwargs=connect_kwargs,
                             gateway=gateway)
    client = paramiko.SSHClient()
    known = KnownHostsFile(target.known_hosts)
    known.load_into(client)
    client.set_missing_host_key_policy(_HostKeyPolicy(target, known))
    conn.client = client
    return conn
