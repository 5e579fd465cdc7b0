"""What a failed lab test leaves in the log: enough to explain it without rerunning.

For every lab the failing test's fixtures hold (found by walking their attributes), each host's kfab journal
tail and Podman pods/containers, and, where a fixture has an admin kubeconfig, the cluster's recent Events.
Collected only on failure, each step bounded in time, never failing the report itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kfab.lab import Lab

HOST_COMMANDS = (
    # podman logs every probe's exec under the agent's unit: those lines would hide what matters
    "journalctl -u 'kfab*' -n 2000 --no-pager -o short-precise 2>&1 | grep -Ev ' container (exec|exec_died) '"
    " | tail -n 80",
    "podman pod ps 2>&1",
    "podman ps -a --format '{{.ID}} {{.Names}} {{.Status}} {{.Labels}}' 2>&1 | cut -c1-220",
)
SEARCH_DEPTH = 3


def _walk(value, depth: int, seen: set[int]):
    if id(value) in seen or depth < 0:
        return
    seen.add(id(value))
    yield value
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        for attr in attrs.values():
            yield from _walk(attr, depth - 1, seen)


def fixture_parts(funcargs: dict) -> tuple[list[Lab], list[Path]]:
    """The labs and admin kubeconfigs reachable from a test's fixture values."""
    labs: dict[str, Lab] = {}
    kubeconfigs: dict[str, Path] = {}
    seen: set[int] = set()
    for value in funcargs.values():
        for part in _walk(value, SEARCH_DEPTH, seen):
            if isinstance(part, Lab):
                labs[str(part.spec.inventory)] = part
            kubeconfig = getattr(part, "kubeconfig", None)
            if isinstance(kubeconfig, Path) and kubeconfig.exists():
                kubeconfigs[str(kubeconfig)] = kubeconfig
    return list(labs.values()), list(kubeconfigs.values())


def _host_report(lab: Lab, host: str) -> str:
    lines = [f"--- {host} ({lab.spec.inventory.name})"]
    for cmd in HOST_COMMANDS:
        try:
            proc = lab.ssh(host, cmd, timeout=30)
            lines += [f"$ {cmd}", (proc.stdout + proc.stderr).rstrip()]
        except (subprocess.SubprocessError, OSError) as exc:
            lines.append(f"$ {cmd}\n(not answered: {exc})")
            break
    return "\n".join(lines)


def _events(kubeconfig: Path) -> str:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    try:
        proc = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "events", "-A",
                               "--sort-by=.lastTimestamp"], capture_output=True, text=True, timeout=30)
        out = (proc.stdout + proc.stderr).rstrip().splitlines()
    except (subprocess.SubprocessError, OSError) as exc:
        out = [f"(not answered: {exc})"]
    return "\n".join([f"--- events ({kubeconfig})", *out[-60:]])


def module_labs(module) -> list[Lab]:
    """A fixture that failed in its setup left no value behind: the labs of the module's inventories then."""
    inventories = {v for v in vars(module).values() if isinstance(v, Path) and v.suffix == ".yml"
                   and v.parent.name == "inventory" and v.exists()} if module else set()
    return [Lab(path) for path in sorted(inventories)]


def collect(funcargs: dict, module=None) -> str:
    labs, kubeconfigs = fixture_parts(funcargs)
    labs = labs or module_labs(module)
    jobs = [(lab, host) for lab in labs for host in lab.hosts]
    if not jobs and not kubeconfigs:
        return ""
    with ThreadPoolExecutor(max_workers=8) as pool:
        hosts = list(pool.map(lambda job: _host_report(*job), jobs))
        events = list(pool.map(_events, kubeconfigs))
    return "\n".join(hosts + events)
