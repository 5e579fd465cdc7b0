"""The lab host image: a debootstrapped Debian bookworm that boots like a fresh minimal VM.

Built once and cached; the image tag is a hash of the recipe (debootstrap arguments, the files written
into the image, this machine's apt sources), so changing any of them builds a new image.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kfab.lab.errors import LabError, run
from kfab.lab.state import file_lock, lab_root

IMAGE_NAME = "localhost/kfab-lab-host"
SUITE = "bookworm"
PACKAGES = "systemd-sysv,openssh-server,python3,iproute2,ca-certificates,procps"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Hosts use the same mirror and apt settings as this machine, through the outer NAT.
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_CONF = Path("/etc/apt/apt.conf.d/99artifact-registry")

# Where the operator's public key is bind-mounted into each host (read-only).
OPERATOR_KEY_PATH = "/etc/kfab-lab/operator.pub"

FIRSTBOOT_SCRIPT = f"""#!/bin/sh
# The image ships no SSH host keys, so every host makes its own at first boot (ssh-keygen -A only
# creates missing ones); the operator's key is authorised once, and stays editable afterwards.
set -e
ssh-keygen -A
install -d -m 700 /root/.ssh
if [ -s {OPERATOR_KEY_PATH} ]; then
    touch /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    grep -qxF "$(cat {OPERATOR_KEY_PATH})" /root/.ssh/authorized_keys \\
        || cat {OPERATOR_KEY_PATH} >> /root/.ssh/authorized_keys
fi
"""

FIRSTBOOT_UNIT = """[Unit]
Description=kfab lab: per-host SSH host keys and the operator's key
Before=ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kfab-lab-firstboot

[Install]
WantedBy=multi-user.target
"""

SSHD_CONFIG = """# kfab lab: key-only root login, as on a freshly installed server with an authorised key.
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""

# Units masked in the image, and why:
MASKED_UNITS = (
    # systemd-networkd flushes the address Podman gives eth0 (LAB.md).
    "systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-wait-online.service",
    # apt's timers are Persistent and never ran, so they fire at first boot and hold the dpkg lock
    # while the provisioner wants to install packages.
    "apt-daily.timer", "apt-daily-upgrade.timer",
)


@dataclass(frozen=True)
class Recipe:
    mirror: str
    apt_files: dict[str, bytes]  # path in the image -> content

    @property
    def tag(self) -> str:
        h = hashlib.sha256()
        for part in (SUITE, PACKAGES, self.mirror, FIRSTBOOT_SCRIPT, FIRSTBOOT_UNIT, SSHD_CONFIG,
                     repr(MASKED_UNITS), OPERATOR_KEY_PATH):
            h.update(part.encode() + b"\0")
        for path, content in sorted(self.apt_files.items()):
            h.update(path.encode() + b"\0" + content + b"\0")
        return h.hexdigest()[:16]

    @property
    def image(self) -> str:
        return f"{IMAGE_NAME}:{self.tag}"


def host_recipe() -> Recipe:
    """The recipe for this machine: its Debian mirror and apt settings, copied into the image."""
    files: dict[str, bytes] = {}
    mirror = DEFAULT_MIRROR
    if APT_SOURCES.exists():
        text = APT_SOURCES.read_bytes()
        files[f"/etc/apt/sources.list.d/{APT_SOURCES.name}"] = text
        for line in text.decode().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                mirror = line.split()[1]
                break
    if APT_CONF.exists():
        files[f"/etc/apt/apt.conf.d/{APT_CONF.name}"] = APT_CONF.read_bytes()
    return Recipe(mirror=mirror, apt_files=files)


def image_exists(image: str) -> bool:
    return run(["podman", "image", "exists", image], check=False).returncode == 0


def ensure_image(recipe: Recipe | None = None, log=None) -> str:
    """Return the image name for the recipe, building it first if it is not there yet."""
    recipe = recipe or host_recipe()
    if image_exists(recipe.image):
        return recipe.image
    # One build at a time on this machine: several test sessions may ask at once.
    with file_lock(lab_root() / "image.lock"):
        if not image_exists(recipe.image):
            _build(recipe, log or (lambda msg: print(msg, file=sys.stderr)))
            remove_old_images(keep=recipe.image)
    return recipe.image


def _build(recipe: Recipe, log) -> None:
    log(f"lab: building host image {recipe.image} (debootstrap {SUITE}, takes a few minutes once)")
    workdir = Path(tempfile.mkdtemp(prefix="kfab-lab-image-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    started = time.monotonic()
    steps = (("debootstrap", lambda: debootstrap(rootfs, recipe)), ("customise", lambda: customise(rootfs, recipe)),
             ("podman import", lambda: _import(rootfs, recipe.image)))
    try:
        for number, (name, step) in enumerate(steps, 1):
            step()
            log(f"lab: image step {number} of {len(steps)} ({name}) done, {time.monotonic() - started:.0f} s so far")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"lab: built {recipe.image} in {time.monotonic() - started:.0f} s")


def debootstrap(rootfs: Path, recipe: Recipe) -> None:
    """The minimal Debian every lab host starts from (container hosts and VM hosts alike)."""
    try:
        run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(rootfs),
             recipe.mirror], timeout=1800)
    except LabError as exc:
        # debootstrap's own log says which package or download failed; it goes with the work dir.
        log_file = rootfs / "debootstrap/debootstrap.log"
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] if log_file.exists() else []
        raise LabError(f"building the lab host image failed: {exc}"
                       + (f" (debootstrap.log: {tail[0]})" if tail else "")) from exc


def customise(rootfs: Path, recipe: Recipe) -> None:
    """What makes a debootstrapped tree a lab host: no shared keys or machine id, first-boot keys, apt."""
    for rel in ("etc/ssh",):
        for key in (rootfs / rel).glob("ssh_host_*"):
            key.unlink()
    # An empty machine-id: systemd takes the one Podman passes (--machine-id) per host.
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    systemd_dir = rootfs / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
        for wants in systemd_dir.glob(f"*.wants/{unit}"):
            wants.unlink()
    script = rootfs / "usr/local/sbin/kfab-lab-firstboot"
    script.write_text(FIRSTBOOT_SCRIPT)
    script.chmod(0o755)
    (systemd_dir / "kfab-lab-firstboot.service").write_text(FIRSTBOOT_UNIT)
    wants = systemd_dir / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "kfab-lab-firstboot.service").symlink_to("/etc/systemd/system/kfab-lab-firstboot.service")
    (rootfs / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (rootfs / "etc/ssh/sshd_config.d/kfab-lab.conf").write_text(SSHD_CONFIG)
    root_ssh = rootfs / "root/.ssh"
    root_ssh.mkdir(mode=0o700, exist_ok=True)
    if recipe.apt_files:
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for path, content in recipe.apt_files.items():
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    # Downloaded .debs and package lists: a fresh VM has none cached either; roles run apt-get update.
    for cached in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        cached.unlink()
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()


def _import(rootfs: Path, image: str) -> None:
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                           stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(["podman", "import", "--change", 'CMD ["/sbin/init"]', "-", image],
                              stdin=tar.stdout, capture_output=True, timeout=600)
    finally:
        tar.stdout.close()
        tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LabError(f"podman import of {image} failed: {err[-1] if err else 'tar failed'}")


def remove_old_images(keep: str) -> None:
    """Drop host images built from older recipes, unless a container still uses them."""
    proc = run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_NAME], check=False)
    # `podman rmi` without --force refuses an image a container (of any lab) still uses.
    for image in proc.stdout.decode().split():
        if image != keep:
            run(["podman", "rmi", image], check=False)
