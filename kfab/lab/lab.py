"""The local lab as one object: `Lab(inventory).up()`, `.down()`, `.status()`, `.ssh_command(host)`.

Shared by the `kfab lab` commands, the test fixtures and the benchmark.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kfab.lab import faults, hosts, network, vm
from kfab.lab.errors import LabError
from kfab.lab.image import ensure_image
from kfab.lab.vm_image import ensure_vm_image
from kfab.lab.inventory import LabSpec, load_lab_spec
from kfab.lab.sshcheck import login_works, ssh_banner, ssh_command, wait_for_banner
from kfab.lab.state import ensure_ssh_key, file_lock

SSH_DEADLINE_S = 120.0  # a first boot takes ~3 s; the rest is headroom for a loaded machine
VM_SSH_DEADLINE_S = 600.0  # an emulated VM boots in ~25-50 s; several at once on a loaded machine take longer
# Per SSH banner / login attempt. An emulated VM on a loaded machine takes seconds for either.
BANNER_TIMEOUT_S = {False: 1.0, True: 20.0}
# `status` asks once, not in a polling loop: a container host's sshd on a machine at load 20+ has taken over
# 1 s to greet, and a running host must not be reported as "no answer" for that.
STATUS_BANNER_TIMEOUT_S = {False: 5.0, True: 20.0}
LOGIN_TIMEOUT_S = {False: 10.0, True: 60.0}


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)   # hosts (re)created by this run
    restarted: list[str] = field(default_factory=list)  # stopped, paused or cut-off hosts brought back as they were
    removed: list[str] = field(default_factory=list)   # stale lab containers removed
    changed: bool = False                               # False: the lab was already up as listed


@dataclass(frozen=True)
class HostStatus:
    name: str
    ip: str
    running: bool
    ssh: str  # "ok", "answers, login failed: ...", or "no answer"
    kind: str = "container"  # or "vm"
    state: str = ""  # running, paused, partitioned, stopped, missing

    @property
    def ready(self) -> bool:
        return self.running and self.ssh == "ok"


def _parallel(fn, items):
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(len(items), 16)) as pool:
        return list(pool.map(fn, items))


class Lab:
    def __init__(self, inventory: str | Path, log=None):
        self.spec: LabSpec = load_lab_spec(inventory)
        self.log = log or (lambda msg: None)

    @property
    def hosts(self) -> dict[str, str]:
        return {h.name: h.ip for h in self.spec.hosts}

    @property
    def containers(self) -> list:
        return [h for h in self.spec.hosts if not h.vm]

    @property
    def vms(self) -> list:
        return [h for h in self.spec.hosts if h.vm]

    def _lock(self):
        return file_lock(self.spec.state_dir / "lab.lock")

    # -- up ---------------------------------------------------------------------------------------
    def up(self, replace: tuple[str, ...] = ()) -> UpResult:
        """Every listed host running and answering SSH. A host that is stopped, paused or partitioned comes back
        with its disk as it was; only the hosts named in `replace` (and stale ones) are created afresh."""
        spec = self.spec
        result = UpResult()
        for name in replace:
            spec.host(name)  # an unknown name is an error before anything changes
        with self._lock():
            vm.check_vms(spec)
            image = ensure_image(log=self.log)
            vm_image = None
            if self.vms:
                vm_image = ensure_vm_image(log=self.log)
                vm.check_image(vm_image)
            public_key, new_key = ensure_ssh_key(spec.key_file)
            current = {h.name: hosts.inspect(h.name) for h in self.containers}
            for host in self.containers:
                hosts.check_ownership(current[host.name], spec, host)
            listed = {h.name for h in self.containers}
            # Hosts of this lab that the inventory no longer lists (or a renamed host) go away.
            for name in hosts.lab_containers(spec):
                if name not in listed:
                    hosts.remove_host(name)
                    result.removed.append(name)
            for name in vm.lab_vms(spec):
                if name not in {h.name for h in self.vms}:
                    vm.stop_vm(spec, name)
                    result.removed.append(name)
            net_changed = network.ensure_network(spec)
            # Before any VM: its tap joins the bridge the holder keeps up. A restarted holder needs no
            # host restarted: running VMs' taps are re-enslaved below if the bridge was made anew.
            holder_changed = bool(self.vms) and vm.ensure_holder(spec, image)
            if not self.vms and vm.vms_dir(spec).exists() and vm.remove_holder(spec):
                result.removed.append(vm.holder_name(spec))
            to_start = [h for h in self.containers
                        if net_changed or new_key  # hosts authorise the key at boot
                        or h.name in replace or not hosts.is_current(current[h.name], spec, h, image)]
            result.restarted = [h.name for h in self.containers if h not in to_start and self._bring_back(h.name)]
            to_start += [h for h in self.vms
                         if net_changed or new_key or not vm.is_current(spec, h, vm_image, public_key)]
            for host in self.vms:
                if host not in to_start:
                    vm.ensure_tap(spec, host.name)  # Podman may have made the bridge anew
            if to_start:
                self.log(f"lab {spec.network}: starting {', '.join(h.name for h in to_start)}")
                dns = [spec.gateway] + vm.outer_nameservers()
                _parallel(lambda h: (vm.start_vm(spec, h, vm_image, public_key, dns) if h.vm
                                     else hosts.start_host(spec, h, image, public_key)), to_start)
                result.started = [h.name for h in to_start]
            rule_changed = network.ensure_nat_rule(spec)
            if to_start or result.restarted or not self._all_log_in():
                self._wait_ready()
            result.changed = bool(result.started or result.restarted or result.removed or net_changed
                                  or rule_changed or holder_changed)
        return result

    def _bring_back(self, name: str) -> bool:
        """Start a stopped host, thaw a paused one, heal a cut one; True if any was needed."""
        changed = faults.start(self.spec, name)
        return faults.heal(self.spec, name) or changed

    def _all_log_in(self) -> bool:
        """Every host accepts the lab key and matches known_hosts (the no-op `up` check)."""
        spec = self.spec
        if not spec.known_hosts_file.exists():
            return False
        return all(ok for ok, _ in _parallel(
            lambda h: login_works(h.ip, spec.key_file, spec.known_hosts_file, LOGIN_TIMEOUT_S[h.vm]),
            spec.hosts))

    def _wait_ready(self) -> None:
        """Wait until every host answers SSH, record its real host keys, and log in with the lab key."""
        spec = self.spec
        started = time.monotonic()
        deadline = started + (VM_SSH_DEADLINE_S if self.vms else SSH_DEADLINE_S)
        answered = itertools.count(1)

        def banner(host) -> None:
            # A VM boots for a minute or more: say each host as it comes, with the count and the time so far.
            wait_for_banner(host.name, host.ip, deadline, BANNER_TIMEOUT_S[host.vm])
            self.log(f"lab {spec.network}: {host.name} answers SSH after {time.monotonic() - started:.1f} s "
                     f"({next(answered)} of {len(spec.hosts)})")
        _parallel(banner, spec.hosts)
        keys = dict(zip([h.name for h in spec.hosts],
                        _parallel(lambda h: vm.host_keys(spec, h.name) if h.vm else hosts.host_keys(h.name),
                                  spec.hosts)))
        lines = []
        for host in spec.hosts:
            if not keys[host.name]:
                raise LabError(f"lab host {host.name}: no SSH host keys found in /etc/ssh")
            lines += [f"{host.ip},{host.name} {key}" for key in keys[host.name]]
        self._write_known_hosts("".join(line + "\n" for line in lines))

        def login(host):
            while True:
                ok, err = login_works(host.ip, spec.key_file, spec.known_hosts_file, LOGIN_TIMEOUT_S[host.vm])
                if ok:
                    return
                if time.monotonic() > deadline:
                    raise LabError(f"lab host {host.name} ({host.ip}): SSH login with "
                                   f"{spec.key_file} failed: {err} (`kfab lab down` then `up` "
                                   "starts it afresh)")
                time.sleep(0.2)
        _parallel(login, spec.hosts)

    def _write_known_hosts(self, text: str) -> None:
        path = self.spec.known_hosts_file
        if path.exists() and path.read_text() == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    # -- faults -----------------------------------------------------------------------------------
    def _locked(self, action, *args):
        with self._lock():
            return action(self.spec, *args)

    def stop(self, name: str, kill: bool = False) -> bool:
        """Power a host off (orderly, or cut with `kill`), keeping its disk; False if it was off already."""
        return self._locked(faults.stop, name, kill)

    def start(self, name: str) -> bool:
        """Boot a stopped host from its disk and wait until it answers SSH; False if it was running."""
        with self._lock():
            started = faults.start(self.spec, name)
            self._wait_host(name)
        return started

    def restart(self, name: str, kill: bool = False) -> None:
        with self._lock():
            faults.stop(self.spec, name, kill)
            faults.start(self.spec, name)
            self._wait_host(name)

    def pause(self, name: str) -> bool:
        return self._locked(faults.pause, name)

    def unpause(self, name: str) -> bool:
        return self._locked(faults.unpause, name)

    def partition(self, name: str) -> bool:
        return self._locked(faults.partition, name)

    def heal(self, name: str) -> bool:
        return self._locked(faults.heal, name)

    def _wait_host(self, name: str) -> None:
        """One host's SSH answers and takes the lab key again (its host keys are on its disk, unchanged)."""
        host = self.spec.host(name)
        deadline = time.monotonic() + SSH_DEADLINE_S
        wait_for_banner(host.name, host.ip, deadline, BANNER_TIMEOUT_S[False])
        while True:
            ok, err = login_works(host.ip, self.spec.key_file, self.spec.known_hosts_file, LOGIN_TIMEOUT_S[False])
            if ok:
                return
            if time.monotonic() > deadline:
                raise LabError(f"{self.spec.inventory}: lab host {name} ({host.ip}) booted again but SSH login "
                               f"failed: {err}")
            time.sleep(0.2)

    # -- down -------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Remove the lab's containers, network and NAT rule; returns what was removed."""
        spec = self.spec
        removed: list[str] = []
        with self._lock():
            vms = vm.lab_vms(spec)
            _parallel(lambda name: vm.stop_vm(spec, name), vms)
            removed += [f"vm {n}" for n in vms]
            if vm.remove_holder(spec):
                removed.append(f"container {vm.holder_name(spec)}")
            names = set(hosts.lab_containers(spec))
            _parallel(hosts.remove_host, sorted(names))
            removed += [f"container {n}" for n in sorted(names)]
            if network.remove_network(spec):
                removed.append(f"network {spec.network}")
            rules = network.remove_nat_rules(spec)
            if rules:
                removed.append(f"{rules} iptables rule(s) {network.rule_comment(spec)}")
            # The next hosts get new host keys; the lab key itself is kept.
            spec.known_hosts_file.unlink(missing_ok=True)
        return removed

    # -- status / ssh -----------------------------------------------------------------------------
    def status(self) -> list[HostStatus]:
        spec = self.spec

        def one(host):
            kind = "vm" if host.vm else "container"
            if host.vm:
                running = vm.running(spec, host.name)
                state = "running" if running else "stopped"
            else:
                container = hosts.inspect(host.name)
                ours = container is not None and container.network == spec.network
                running = bool(ours and container.running)
                state = ("missing" if not ours else "paused" if container.paused else
                         "stopped" if not running else
                         "partitioned" if faults.is_partitioned(spec, host.name, container) else "running")
            if not running or not ssh_banner(host.ip, timeout=STATUS_BANNER_TIMEOUT_S[host.vm]):
                return HostStatus(host.name, host.ip, running, "no answer", kind, state)
            ok, err = (login_works(host.ip, spec.key_file, spec.known_hosts_file, LOGIN_TIMEOUT_S[host.vm])
                       if spec.known_hosts_file.exists() else (False, "no known_hosts (run kfab lab up)"))
            return HostStatus(host.name, host.ip, running, "ok" if ok else f"answers, login failed: {err}", kind,
                              state)
        return _parallel(one, spec.hosts)

    def ssh_command(self, host: str, *, batch: bool = True) -> list[str]:
        """The ssh command line (lab key, lab known_hosts, strict checking) for `host`."""
        lab_host = self.spec.host(host)
        return ssh_command(lab_host.ip, self.spec.key_file, self.spec.known_hosts_file, batch=batch,
                           connect_timeout=LOGIN_TIMEOUT_S[lab_host.vm] / 2)

    def ssh(self, host: str, cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a shell command on a lab host over SSH; returns the completed process (text output)."""
        return subprocess.run(self.ssh_command(host) + [cmd], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
