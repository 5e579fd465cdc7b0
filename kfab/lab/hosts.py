"""Lab hosts: privileged systemd containers started exactly as LAB.md measured they must be."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from kfab.lab.errors import LabError, run
from kfab.lab.image import OPERATOR_KEY_PATH
from kfab.lab.inventory import LabHost, LabSpec
from kfab.lab.network import LABEL


@dataclass(frozen=True)
class Container:
    name: str
    running: bool
    image: str
    ip: str | None  # the address it was created with (Podman shows none while it is stopped)
    network: str | None  # value of the lab label; None when the container is not a lab host
    status: str = "running"  # Podman's: running, paused, exited, created, ...
    pid: int = 0  # its init's PID on this machine while it runs or is paused

    @property
    def paused(self) -> bool:
        return self.status == "paused"

    @property
    def stopped(self) -> bool:
        return not self.running and not self.paused

    @property
    def never_booted(self) -> bool:
        """Created but never started: what a killed `kfab lab up` leaves while its `podman run` may still be
        starting it (a second `podman start` then fails with runc's "container with given ID already exists")."""
        return self.status in ("created", "configured", "initialized")


def inspect(name: str) -> Container | None:
    proc = run(["podman", "container", "inspect", name], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)[0]
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    state = data["State"]
    config = data.get("Config") or {}
    return Container(
        name=name,
        running=bool(state.get("Running")),
        image=data.get("ImageName") or "",
        ip=ip or _created_ip(config.get("CreateCommand") or []),
        network=(config.get("Labels") or {}).get(LABEL),
        status=state.get("Status") or "",
        pid=int(state.get("Pid") or 0),
    )


def _created_ip(create_command: list[str]) -> str | None:
    """The --ip a stopped host was created with: it gets that address again when it starts."""
    for flag, value in zip(create_command, create_command[1:]):
        if flag == "--ip":
            return value
    return None


def mac_address(ip: str) -> str:
    """A fixed, locally administered MAC per lab address: a host keeps it across restarts, as hardware does,
    so the others' ARP caches stay right (a new MAC at each start left them sending to the old one for seconds)."""
    return "02:6b:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def lab_containers(spec: LabSpec) -> list[str]:
    """Names of every container labelled as a host of this lab (including ones no longer listed)."""
    out = run(["podman", "ps", "-a", "--filter", f"label={LABEL}={spec.network}",
               "--format", "{{.Names}}"]).stdout.decode()
    return out.split()


def is_current(container: Container | None, spec: LabSpec, host: LabHost, image: str) -> bool:
    """A host of this lab, from this image, with the inventory's IP: keep it (and its disk), running or
    stopped. One that never booted has no disk worth keeping and is made afresh (start_host replaces it)."""
    return (container is not None and container.network == spec.network
            and container.image == image and container.ip == host.ip and not container.never_booted)


def check_ownership(container: Container | None, spec: LabSpec, host: LabHost) -> None:
    if container is not None and container.network != spec.network:
        raise LabError(f"{spec.inventory}: host {host.name}: a container named {host.name!r} exists "
                       f"and is not a host of lab {spec.network!r}; remove or rename it")


def start_host(spec: LabSpec, host: LabHost, image: str, public_key: Path) -> None:
    """(Re)create one host: any old container of that name from this lab is replaced."""
    cmd = [
        "podman", "run", "-d", "--name", host.name, "--hostname", host.name,
        "--label", f"{LABEL}={spec.network}",
        "--privileged",
        # Nested `podman run` on the host needs the real cgroup tree (LAB.md).
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        # Without a unique machine id and this link file masked, udev gives every host's eth0 the
        # same MAC address and the bridge delivers frames to the wrong host (LAB.md).
        "-v", "/dev/null:/etc/systemd/network/99-default.link:ro",
        "-v", f"{public_key}:{OPERATOR_KEY_PATH}:ro",
        "--network", spec.network, "--ip", host.ip, "--mac-address", mac_address(host.ip),
        image, "/sbin/init", f"--machine-id={secrets.token_hex(16)}",
    ]
    # A killed `kfab lab up` may leave its own `podman run` of this host still going: it can create
    # the name again between our rm and run, so replace it and try again.
    for attempt in range(3):
        run(["podman", "rm", "-f", "-t", "0", host.name], check=False)
        try:
            run(cmd)
            return
        except LabError:
            if attempt == 2:
                raise


def remove_host(name: str) -> None:
    run(["podman", "rm", "-f", "-t", "0", name])


def host_keys(name: str) -> list[str]:
    """The host's public SSH host keys ("type base64"), read out of band through Podman."""
    proc = run(["podman", "exec", name, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], check=False)
    keys = []
    for line in proc.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            keys.append(f"{parts[0]} {parts[1]}")
    return keys
