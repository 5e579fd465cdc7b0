"""The VM host image: the lab host's debootstrapped Debian plus a kernel, as a raw disk QEMU boots.

Cached under the lab root by recipe hash (the container host recipe's tag plus everything below), in
`vm-images/<tag>/`: `disk.img` (raw ext4, the read-only base of every VM's throwaway overlay), `vmlinux`
(the uncompressed kernel: QEMU boots its PVH entry directly, faster than vmlinuz under TCG) and `initrd`
(uncompressed, only the modules a virtio root needs). Measured choices are in shared LAB.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfab.lab.errors import LabError, run
from kfab.lab.image import OPERATOR_KEY_PATH, Recipe, customise, debootstrap, host_recipe
from kfab.lab.state import file_lock, lab_root

# Bumped when the build steps below change in a way the constants do not show.
BUILD_VERSION = "1"
DISK_SIZE = "8G"  # sparse: the base holds ~1 GiB; the rest is room for what `kfab up` installs
# Installed without recommends: the kernel's (apparmor, firmware) only slow a boot under emulation.
KERNEL_PACKAGES = ("linux-image-amd64", "initramfs-tools", "kmod", "udev", "e2fsprogs")
# With recommends, as role common installs them, so `kfab up` finds them present (apt under TCG is
# slow); nfs-common and open-iscsi are for the storage work (NFS mounts, iSCSI logins in the VM).
PACKAGES = ("podman", "runc", "crun", "iptables", "nftables", "curl", "util-linux", "nfs-common",
            "open-iscsi")
# An initrd with only what mounts a virtio root (MODULES=list): smaller and faster than `most`.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")

SEED_DEVICE = "/dev/vdb"  # the second virtio disk: a tar of this VM's own files (kfab/lab/vm.py)
SEED_SCRIPT = f"""#!/bin/sh
# This VM's own files come on a read-only seed disk (a tar written by `kfab lab up`): its SSH host keys
# (known to the operator before boot), the operator's key and its network settings. It does the first-boot
# unit's job too (that one waits for basic.target, seconds later under emulation).
set -e
tar -x -f {SEED_DEVICE} -C / --no-overwrite-dir
install -d -m 700 /root/.ssh
touch /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
grep -qxF "$(cat {OPERATOR_KEY_PATH})" /root/.ssh/authorized_keys \\
  || cat {OPERATOR_KEY_PATH} >> /root/.ssh/authorized_keys
. /etc/kfab-lab/vm-net
ip link set lo up
ip link set eth0 up
ip addr replace "$ADDRESS" dev eth0
ip route replace default via "$GATEWAY"
: > /etc/resolv.conf
for ns in $DNS; do echo "nameserver $ns" >> /etc/resolv.conf; done
"""

SEED_UNIT = """[Unit]
Description=kfab lab VM: host keys, operator key and static network from the seed disk
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=network.target kfab-lab-firstboot.service ssh.service
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kfab-lab-vm-seed

[Install]
WantedBy=multi-user.target
"""

FSTAB = "/dev/vda / ext4 rw,noatime 0 0\n"  # a throwaway overlay: no fsck at boot

# Timers and boot-time units that only cost seconds of emulated CPU in a short-lived lab VM
# (podman-auto-update.service alone took 25 s of a boot); the seed does kfab-lab-firstboot's job.
MASKED_UNITS = ("kfab-lab-firstboot.service", "podman-auto-update.service", "podman-auto-update.timer",
                "podman-clean-transient.service", "podman-restart.service", "e2scrub_all.timer",
                "e2scrub_reap.service", "fstrim.timer", "man-db.timer", "logrotate.timer", "dpkg-db-backup.timer",
                "systemd-tmpfiles-clean.timer", "apparmor.service")


@dataclass(frozen=True)
class VmImage:
    dir: Path

    @property
    def disk(self) -> Path:
        return self.dir / "disk.img"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd"

    @property
    def tag(self) -> str:
        return self.dir.name


def vm_tag(recipe: Recipe) -> str:
    h = hashlib.sha256()
    for part in (recipe.tag, BUILD_VERSION, DISK_SIZE, repr(KERNEL_PACKAGES), repr(PACKAGES),
                 repr(INITRD_MODULES), SEED_SCRIPT, SEED_UNIT, FSTAB, repr(MASKED_UNITS)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def images_dir() -> Path:
    return lab_root() / "vm-images"


def cached_image(recipe: Recipe | None = None) -> VmImage | None:
    image = VmImage(images_dir() / vm_tag(recipe or host_recipe()))
    return image if (image.dir / "done").exists() else None


def ensure_vm_image(recipe: Recipe | None = None, log=None) -> VmImage:
    """The VM image for this machine's recipe, built first (several minutes) if it is not cached."""
    recipe = recipe or host_recipe()
    image = cached_image(recipe)
    if image:
        return image
    with file_lock(lab_root() / "vm-image.lock"):
        image = cached_image(recipe)
        if image is None:
            image = _build(recipe, vm_tag(recipe), log or (lambda msg: print(msg, file=sys.stderr)))
            remove_old_images(keep=image.tag)
    return image


def _build(recipe: Recipe, tag: str, log) -> VmImage:
    for tool in ("debootstrap", "mkfs.ext4"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed (run scripts/setup.sh)")
    log(f"lab: building VM image {tag} (debootstrap {recipe.mirror} + kernel, takes several minutes once)")
    images_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="kfab-lab-vm-image-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    out = images_dir() / f".{tag}.tmp"
    shutil.rmtree(out, ignore_errors=True)
    try:
        debootstrap(rootfs, recipe)
        _install_packages(rootfs, recipe)
        customise(rootfs, recipe)
        _customise_vm(rootfs)
        out.mkdir()
        _copy_boot_files(rootfs, out)
        # mke2fs copies the tree (owners, modes, xattrs such as file capabilities) without a mount.
        run(["mkfs.ext4", "-q", "-F", "-L", "kfab-root", "-d", str(rootfs), str(out / "disk.img"), DISK_SIZE],
            timeout=1200)
        (out / "done").write_text(tag + "\n")
        final = images_dir() / tag
        shutil.rmtree(final, ignore_errors=True)
        os.replace(out, final)
    finally:
        _unmount_all(rootfs)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    log(f"lab: built VM image {tag}")
    return VmImage(images_dir() / tag)


def _install_packages(rootfs: Path, recipe: Recipe) -> None:
    (rootfs / "etc/initramfs-tools/conf.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/initramfs-tools/conf.d/kfab-lab.conf").write_text("MODULES=list\nCOMPRESS=gzip\n")
    (rootfs / "etc/initramfs-tools/modules").write_text("".join(m + "\n" for m in INITRD_MODULES))
    # No service starts inside the build chroot (iscsid, rpcbind, ...).
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    for path, content in recipe.apt_files.items():
        if "/apt.conf.d/" in path:
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    run(["mount", "-t", "proc", "proc", str(rootfs / "proc")])
    apt = ["chroot", str(rootfs), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y"]
    try:
        run(apt + ["update"], timeout=600)
        run(apt + ["--no-install-recommends", "install", *KERNEL_PACKAGES], timeout=1800)
        run(apt + ["install", *PACKAGES], timeout=1800)
    except LabError as exc:
        raise LabError(f"building the VM image failed: {exc}") from exc
    finally:
        _unmount_all(rootfs)
        policy.unlink(missing_ok=True)


def _unmount_all(rootfs: Path) -> None:
    if (rootfs / "proc/self").exists():
        run(["umount", "-l", str(rootfs / "proc")], check=False)


def _customise_vm(rootfs: Path) -> None:
    (rootfs / "etc/fstab").write_text(FSTAB)
    (rootfs / "etc/hostname").unlink(missing_ok=True)  # systemd.hostname= on the kernel command line
    script = rootfs / "usr/local/sbin/kfab-lab-vm-seed"
    script.write_text(SEED_SCRIPT)
    script.chmod(0o755)
    systemd_dir = rootfs / "etc/systemd/system"
    (systemd_dir / "kfab-lab-vm-seed.service").write_text(SEED_UNIT)
    (systemd_dir / "multi-user.target.wants/kfab-lab-vm-seed.service").symlink_to(
        "/etc/systemd/system/kfab-lab-vm-seed.service")
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # pam_systemd makes every root SSH login wait for a logind session (seconds under emulation).
    session = rootfs / "etc/pam.d/common-session"
    if session.exists():
        session.write_text("".join(line for line in session.read_text().splitlines(keepends=True)
                                   if "pam_systemd.so" not in line))


def _copy_boot_files(rootfs: Path, out: Path) -> None:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabError(f"building the VM image failed: no kernel in {rootfs / 'boot'}")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    (out / "vmlinux").write_bytes(extract_vmlinux(kernels[-1].read_bytes()))
    initrd = (rootfs / "boot" / f"initrd.img-{version}").read_bytes()
    (out / "initrd").write_bytes(gzip.decompress(initrd) if initrd[:2] == b"\x1f\x8b" else initrd)
    (out / "kernel-version").write_text(version + "\n")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage (as the kernel's scripts/extract-vmlinux finds it)."""
    for magic, unpack in ((b"\xfd7zXZ\x00", _unxz), (b"\x28\xb5\x2f\xfd", _unzstd), (b"\x1f\x8b\x08", _gunzip)):
        start = bzimage.find(magic)
        while start != -1:
            try:
                elf = unpack(bzimage[start:])
            except Exception:  # a false match of the magic bytes: look further
                elf = b""
            if elf[:4] == b"\x7fELF":
                return elf
            start = bzimage.find(magic, start + 1)
    raise LabError("building the VM image failed: no ELF kernel found inside vmlinuz")


def _unxz(data: bytes) -> bytes:
    return lzma.LZMADecompressor().decompress(data)


def _gunzip(data: bytes) -> bytes:
    import zlib
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def _unzstd(data: bytes) -> bytes:
    proc = subprocess.run(["zstd", "-dc"], input=data, capture_output=True)
    return proc.stdout


def remove_old_images(keep: str) -> None:
    """Drop VM images of older recipes unless a VM of some lab still runs on one (its overlay's base)."""
    in_use = {keep}
    for config in lab_root().glob("*/vms/*/config.json"):
        try:
            in_use.add(json.loads(config.read_text())["image"])
        except (OSError, ValueError, KeyError):
            continue
    for path in images_dir().glob("*"):
        if path.is_dir() and path.name not in in_use and not path.name.startswith("."):
            shutil.rmtree(path, ignore_errors=True)
