"""Lab hosts as QEMU virtual machines: for what needs a kernel of its own (NFS and iSCSI mounts, modules).

Inventory interface. A lab host is a VM when its host vars say so; everything else is as for container
hosts (`ansible_host` is its static IP in `kfab_lab_subnet`, the same key, known_hosts and `kfab up`):

    storage-vm1:
      ansible_host: 10.93.0.21
      kfab_lab_vm: true            # a QEMU VM instead of a privileged container
      kfab_lab_vm_memory: 1536     # MiB (default 1024)
      kfab_lab_vm_cpus: 2          # (default 2; TCG boots fastest with 2)

`kfab lab up -i INV --vms N` writes INV's hosts plus N such VMs (next free IPs, group workers) to an
inventory next to INV and brings that lab up. The VM image is Debian bookworm with linux-image-amd64,
nfs-common, open-iscsi and Podman preinstalled (kfab/lab/vm_image.py).

How a VM runs (measured recipe in shared LAB.md): software emulation (`-accel tcg`; nested KVM hangs
here), booted from the image's kernel with a throwaway qcow2 overlay on the shared raw base, a tap
device on the lab network's Podman bridge, and a small read-only seed disk carrying the VM's own SSH
host keys (made here, so known_hosts is written before it boots), the operator's key and its network
settings. The lab's state directory holds one directory per VM (`vms/<host>/`: pidfile, overlay, seed,
console log); `down` stops exactly the QEMU processes whose pidfile is there.

The bridge exists only while a container is attached to the network, and netavark also owns the
network's NAT and DNS: a lab with VMs therefore keeps one tiny holder container (`sleep infinity`,
labelled io.kfab.lab.vmnet, on the subnet's last usable address) so the bridge, the masquerade towards
the Debian mirror and the gateway's DNS stay up whether or not container hosts run or are restarted.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import tarfile
import time
from pathlib import Path

from kfab.lab.errors import LabError, run
from kfab.lab.inventory import LabHost, LabSpec
from kfab.lab.vm_image import VmImage

QEMU = "qemu-system-x86_64"
HOLDER_LABEL = "io.kfab.lab.vmnet"  # value: the lab's network name
KEY_TYPES = ("ed25519", "ecdsa", "rsa")  # every type `ssh-keygen -A` would otherwise make in the VM
STOP_TIMEOUT_S = 10.0


# -- names and places -----------------------------------------------------------------------------
def vms_dir(spec: LabSpec) -> Path:
    return spec.state_dir / "vms"


def vm_dir(spec: LabSpec, name: str) -> Path:
    return vms_dir(spec) / name


def _digest(spec: LabSpec, name: str) -> str:
    return hashlib.sha256(f"{spec.network}/{name}".encode()).hexdigest()


def tap_name(spec: LabSpec, name: str) -> str:
    return "kfv" + _digest(spec, name)[:12]  # IFNAMSIZ: 15 characters at most


def mac_address(spec: LabSpec, name: str) -> str:
    d = _digest(spec, name)
    return f"52:54:00:{d[12:14]}:{d[14:16]}:{d[16:18]}"


def holder_name(spec: LabSpec) -> str:
    return f"kfab-vmnet-{spec.network}"


def holder_ip(spec: LabSpec) -> str:
    return str(spec.subnet.broadcast_address - 1)


# -- checks before anything starts -----------------------------------------------------------------
def check_vms(spec: LabSpec) -> None:
    """Everything a VM lab needs, checked before any host is touched; errors name the file/host."""
    vms = [h for h in spec.hosts if h.vm]
    if not vms:
        return
    for host in spec.hosts:
        if host.ip == holder_ip(spec):
            raise LabError(f"{spec.inventory}: host {host.name}: ansible_host {host.ip} is reserved for the "
                           f"VM network holder of lab {spec.network} (the subnet's last usable address)")
    for tool in (QEMU, "qemu-img", "ssh-keygen", "ip"):
        if shutil.which(tool) is None:
            raise LabError(f"{spec.inventory}: host {vms[0].name} is a VM (kfab_lab_vm) but {tool} is not "
                           "installed (run scripts/setup.sh)")
    if not os.path.exists("/dev/net/tun"):
        raise LabError(f"{spec.inventory}: host {vms[0].name} is a VM but /dev/net/tun is missing")


def check_image(image: VmImage) -> None:
    for path in (image.disk, image.kernel, image.initrd):
        if not path.is_file() or path.stat().st_size == 0:
            raise LabError(f"VM image {image.dir}: {path.name} is missing (remove {image.dir} to rebuild it)")


# -- the network holder and taps -------------------------------------------------------------------
def ensure_holder(spec: LabSpec, image: str) -> bool:
    """The holder container that keeps the lab bridge (and its NAT, DNS) up; True if (re)started."""
    name = holder_name(spec)
    proc = run(["podman", "container", "inspect", name, "--format",
                f'{{{{.State.Running}}}} {{{{index .Config.Labels "{HOLDER_LABEL}"}}}}'], check=False)
    if proc.returncode == 0:
        running, _, label = proc.stdout.decode().strip().partition(" ")
        if label != spec.network:
            raise LabError(f"{spec.inventory}: a container named {name!r} exists and is not the VM network "
                           f"holder of lab {spec.network!r}; remove or rename it")
        if running == "true" and holder_ip(spec) in _container_ips(name):
            return False
    run(["podman", "rm", "-f", "-t", "0", name], check=False)
    run(["podman", "run", "-d", "--name", name, "--label", f"{HOLDER_LABEL}={spec.network}",
         "--network", spec.network, "--ip", holder_ip(spec), image, "sleep", "infinity"])
    return True


def _container_ips(name: str) -> list[str]:
    proc = run(["podman", "container", "inspect", name, "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"], check=False)
    return proc.stdout.decode().split()


def remove_holder(spec: LabSpec) -> bool:
    proc = run(["podman", "ps", "-a", "--filter", f"label={HOLDER_LABEL}={spec.network}",
                "--format", "{{.Names}}"], check=False)
    names = proc.stdout.decode().split()
    for name in names:
        run(["podman", "rm", "-f", "-t", "0", name], check=False)
    return bool(names)


def bridge(spec: LabSpec) -> str:
    out = run(["podman", "network", "inspect", spec.network, "--format", "{{.NetworkInterface}}"])
    name = out.stdout.decode().strip()
    if not name or not Path(f"/sys/class/net/{name}").exists():
        raise LabError(f"lab {spec.network}: the network's bridge {name or '?'} does not exist "
                       "(the VM network holder container is not running)")
    return name


def _tap_master(tap: str) -> str | None:
    link = Path(f"/sys/class/net/{tap}/master")
    return os.path.basename(os.readlink(link)) if link.exists() else None


def ensure_tap(spec: LabSpec, name: str) -> str:
    """The VM's tap device, enslaved to the lab bridge (again, if Podman recreated the bridge)."""
    tap, br = tap_name(spec, name), bridge(spec)
    if not Path(f"/sys/class/net/{tap}").exists():
        run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
    if _tap_master(tap) != br:
        run(["ip", "link", "set", tap, "master", br])
    run(["ip", "link", "set", tap, "up"])
    return tap


def remove_tap(spec: LabSpec, name: str) -> bool:
    tap = tap_name(spec, name)
    if not Path(f"/sys/class/net/{tap}").exists():
        return False
    run(["ip", "link", "del", tap], check=False)
    return True


# -- VM processes ------------------------------------------------------------------------------------
def _pid(spec: LabSpec, name: str) -> int | None:
    """The PID of this VM's QEMU, if it runs: read from its pidfile and checked against /proc."""
    pidfile = vm_dir(spec, name) / "qemu.pid"
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # A recycled PID belongs to some other process: ours names its own pidfile on its command line.
    return pid if str(pidfile).encode() in cmdline else None


def running(spec: LabSpec, name: str) -> bool:
    return _pid(spec, name) is not None


def lab_vms(spec: LabSpec) -> list[str]:
    """Every VM this lab has state for (running or left by a killed run), listed in the inventory or not."""
    d = vms_dir(spec)
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.exists() else []


def _wanted(spec: LabSpec, host: LabHost, image: VmImage, public_key: Path) -> dict:
    return {"image": image.tag, "ip": host.ip, "subnet": str(spec.subnet), "memory_mib": host.memory_mib,
            "cpus": host.cpus, "operator_key": public_key.read_text().strip()}


def is_current(spec: LabSpec, host: LabHost, image: VmImage, public_key: Path) -> bool:
    """Running, from this image, with the inventory's settings and tap: keep it as it is."""
    config = vm_dir(spec, host.name) / "config.json"
    try:
        recorded = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return recorded == _wanted(spec, host, image, public_key) and running(spec, host.name)


def start_vm(spec: LabSpec, host: LabHost, image: VmImage, public_key: Path, dns: list[str]) -> None:
    """(Re)create one VM from a fresh overlay with new host keys; returns once QEMU runs."""
    stop_vm(spec, host.name)
    d = vm_dir(spec, host.name)
    d.mkdir(parents=True, exist_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw", str(d / "disk.qcow2")])
    for key_type in KEY_TYPES:
        run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"root@{host.name}",
             "-f", str(d / f"ssh_host_{key_type}_key")])
    _write_seed(d, spec, host, public_key, dns)
    tap = ensure_tap(spec, host.name)
    machine_id = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
    append = (f"root=/dev/vda rw console=ttyS0 quiet net.ifnames=0 panic=-1 "
              f"systemd.hostname={host.name} systemd.machine_id={machine_id}")
    cmd = [
        QEMU, "-name", f"kfab-{spec.network}-{host.name}", "-nodefaults", "-no-user-config",
        # Nested KVM guests hang on this kind of machine (LAB.md); a bigger translation cache
        # costs less memory than the default (RSS ~0.7 GiB instead of ~1.2 GiB).
        "-accel", "tcg,tb-size=256", "-cpu", "qemu64", "-smp", str(host.cpus), "-m", str(host.memory_mib),
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", append,
        "-drive", f"file={d / 'disk.qcow2'},format=qcow2,if=virtio,cache=unsafe,discard=unmap",
        "-drive", f"file={d / 'seed.tar'},format=raw,if=virtio,readonly=on",
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={mac_address(spec, host.name)}",
        "-device", "virtio-rng-pci",
        # No -no-reboot: a reboot in the guest (the reboot module) restarts it in place, same disk and seed,
        # as a real machine would; `kfab lab down` still ends it by its pidfile.
        "-display", "none", "-serial", f"file:{d / 'console.log'}",
        "-daemonize", "-pidfile", str(d / "qemu.pid"),
    ]
    run(cmd, timeout=60)
    (d / "config.json").write_text(json.dumps(_wanted(spec, host, image, public_key), indent=1) + "\n")


def _write_seed(d: Path, spec: LabSpec, host: LabHost, public_key: Path, dns: list[str]) -> None:
    net = (f"ADDRESS={host.ip}/{spec.subnet.prefixlen}\nGATEWAY={spec.gateway}\n"
           f"DNS=\"{' '.join(dns)}\"\n")
    files: dict[str, tuple[bytes, int]] = {"etc/kfab-lab/vm-net": (net.encode(), 0o644),
                                           "etc/kfab-lab/operator.pub": (public_key.read_bytes(), 0o644)}
    for key_type in KEY_TYPES:
        key = f"ssh_host_{key_type}_key"
        files[f"etc/ssh/{key}"] = ((d / key).read_bytes(), 0o600)
        files[f"etc/ssh/{key}.pub"] = ((d / f"{key}.pub").read_bytes(), 0o644)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, (content, mode) in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), mode, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    (d / "seed.tar").write_bytes(buf.getvalue())  # tar pads to 10 KiB records: whole disk sectors


def host_keys(spec: LabSpec, name: str) -> list[str]:
    """The VM's public host keys ("type base64"), as made by start_vm."""
    keys = []
    for key_type in KEY_TYPES:
        pub = vm_dir(spec, name) / f"ssh_host_{key_type}_key.pub"
        if pub.exists():
            parts = pub.read_text().split()
            keys.append(f"{parts[0]} {parts[1]}")
    return keys


def stop_vm(spec: LabSpec, name: str) -> bool:
    """Stop this lab's VM `name` (by its pidfile) and remove its tap and files; True if it ran."""
    pid = _pid(spec, name)
    if pid is not None:
        _signal(pid, signal.SIGTERM)  # QEMU exits at once on SIGTERM; the overlay is thrown away
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _pid(spec, name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid(spec, name) is not None:
            _signal(pid, signal.SIGKILL)
            while _pid(spec, name) is not None:
                time.sleep(0.05)
    remove_tap(spec, name)
    shutil.rmtree(vm_dir(spec, name), ignore_errors=True)
    return pid is not None


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def rss_mib(spec: LabSpec, name: str) -> float | None:
    """Resident memory of the VM's QEMU process (for bench/lab.py)."""
    pid = _pid(spec, name)
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def outer_nameservers() -> list[str]:
    """This machine's resolvers that a VM can reach through the NAT (not loopback ones)."""
    servers = []
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return servers
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                if not ipaddress.ip_address(parts[1]).is_loopback and ":" not in parts[1]:
                    servers.append(parts[1])
            except ValueError:
                pass
    return servers
