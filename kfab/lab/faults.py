"""Hardware faults of a container host: power off/on keeping its disk, freeze, and a cut network link.

- stop: `podman stop` (systemd inside shuts down in order, as `poweroff`), or with `kill` a power cut
  (`podman kill`: init gets SIGKILL and every process of the host, its pods included, dies at once). The
  container and its filesystem stay; `start` boots the same disk again (same IP, MAC, machine id, SSH keys).
- pause: `podman pause` freezes the host's cgroup (the cgroup freezer): its processes stop where they are and
  its network stack still answers ARP, as a hung machine does.
- partition: a table in the host's own network namespace drops every IP packet in or out of its eth0 (its
  own traffic and what it forwards for its pods), applied from this machine with `nsenter` and this
  machine's `nft`, so it needs nothing installed on the host and works on any host image. `heal` deletes
  exactly that table, nothing else.
"""

from __future__ import annotations

from kfab.lab import hosts
from kfab.lab.errors import LabError, run
from kfab.lab.inventory import LabHost, LabSpec

PARTITION_TABLE = "kfab-lab-partition"
# Before conntrack (-200) on the way in and after NAT (100) on the way out: nothing passes either way.
PARTITION_RULES = f"""table inet {PARTITION_TABLE} {{
    chain cut_in {{ type filter hook prerouting priority -400; policy accept; iifname "eth0" drop; }}
    chain cut_out {{ type filter hook postrouting priority 400; policy accept; oifname "eth0" drop; }}
}}
"""
STOP_TIMEOUT_S = 30  # systemd's orderly shutdown inside; then Podman kills what is left


def container_host(spec: LabSpec, name: str) -> tuple[LabHost, hosts.Container]:
    """The inventory's host `name` and its container; a LabError naming host and inventory otherwise."""
    host = spec.host(name)
    if host.vm:
        raise LabError(f"{spec.inventory}: host {name} is a QEMU VM; stop/start/pause/partition act on "
                       "container hosts only")
    container = hosts.inspect(name)
    if container is None or container.network != spec.network:
        raise LabError(f"{spec.inventory}: host {name} has no container of lab {spec.network} "
                       f"(run `kfab lab up -i {spec.inventory}` first)")
    return host, container


def _netns(spec: LabSpec, name: str, container: hosts.Container) -> list[str]:
    if container.pid <= 0:
        raise LabError(f"{spec.inventory}: host {name} is {container.status}: "
                       "its network can be cut or healed only while it runs")
    return ["nsenter", "-t", str(container.pid), "-n"]


def stop(spec: LabSpec, name: str, kill: bool = False) -> bool:
    """Power the host off, keeping its container and disk; False when it was already off."""
    _, container = container_host(spec, name)
    if container.status in ("exited", "stopped", "created", "configured"):
        return False
    if container.paused:
        # A frozen host cannot shut down in order; a power cut needs it thawed to deliver SIGKILL too.
        run(["podman", "unpause", name])
    if kill:
        run(["podman", "kill", "--signal", "KILL", name])
        run(["podman", "wait", name], timeout=60)
    else:
        run(["podman", "stop", "-t", str(STOP_TIMEOUT_S), name], timeout=STOP_TIMEOUT_S + 60)
    return True


def start(spec: LabSpec, name: str) -> bool:
    """Boot a stopped host from its own disk; False when it was running already (a paused one is thawed)."""
    _, container = container_host(spec, name)
    if container.paused:
        run(["podman", "unpause", name])
        return True
    if container.running:
        return False
    run(["podman", "start", name])
    return True


def pause(spec: LabSpec, name: str) -> bool:
    _, container = container_host(spec, name)
    if container.paused:
        return False
    if not container.running:
        raise LabError(f"{spec.inventory}: host {name} is {container.status}; only a running host can be paused")
    run(["podman", "pause", name])
    return True


def unpause(spec: LabSpec, name: str) -> bool:
    _, container = container_host(spec, name)
    if not container.paused:
        return False
    run(["podman", "unpause", name])
    return True


def is_partitioned(spec: LabSpec, name: str, container: hosts.Container) -> bool:
    if container.pid <= 0:
        return False
    proc = run(_netns(spec, name, container) + ["nft", "list", "table", "inet", PARTITION_TABLE], check=False)
    return proc.returncode == 0


def partition(spec: LabSpec, name: str) -> bool:
    """Cut every link of the host (both ways); False when it was cut already."""
    _, container = container_host(spec, name)
    if is_partitioned(spec, name, container):
        return False
    run(_netns(spec, name, container) + ["nft", "-f", "-"], input=PARTITION_RULES.encode())
    return True


def heal(spec: LabSpec, name: str) -> bool:
    """Restore the host's links exactly as before the partition; False when they were not cut."""
    _, container = container_host(spec, name)
    if not is_partitioned(spec, name, container):
        return False
    run(_netns(spec, name, container) + ["nft", "delete", "table", "inet", PARTITION_TABLE])
    return True
