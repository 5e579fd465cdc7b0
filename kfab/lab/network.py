"""The lab's Podman network and the one NAT rule it needs on the outer machine.

Everything made here carries the lab's name (a Podman label, an iptables comment) so that `down` and a
re-run after a killed `up` find exactly what the lab made and nothing else.
"""

from __future__ import annotations

import json

from kfab.lab.errors import LabError, run
from kfab.lab.inventory import LabSpec

LABEL = "io.kfab.lab"  # value: the lab's network name
POD_CIDR = "10.244.0.0/16"


def rule_comment(spec: LabSpec) -> str:
    return f"kfab-lab:{spec.network}"


def _inspect_network(name: str) -> dict | None:
    proc = run(["podman", "network", "inspect", name], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or b"[]")
    return data[0] if data else None


def _subnets(info: dict) -> list[str]:
    return [s.get("subnet") for s in info.get("subnets") or []]


def ensure_network(spec: LabSpec) -> bool:
    """Create the lab network, or keep it when it is already right; returns True if it changed."""
    info = _inspect_network(spec.network)
    if info is not None:
        if (info.get("labels") or {}).get(LABEL) != spec.network:
            raise LabError(f"{spec.inventory}: Podman network {spec.network!r} exists but was not made "
                           "by the kfab lab; choose another kfab_lab_network or remove it")
        if _subnets(info) == [str(spec.subnet)]:
            return False
        # Ours, from an older inventory with another subnet: its containers are ours too.
        run(["podman", "network", "rm", "-f", spec.network])
    run(["podman", "network", "create", "--subnet", str(spec.subnet), "--gateway", spec.gateway,
         "--label", f"{LABEL}={spec.network}", spec.network])
    return True


def remove_network(spec: LabSpec) -> bool:
    info = _inspect_network(spec.network)
    if info is None or (info.get("labels") or {}).get(LABEL) != spec.network:
        return False
    run(["podman", "network", "rm", "-f", spec.network])
    return True


def _rule_args(spec: LabSpec) -> list[str]:
    # Host -> remote pod traffic keeps the host IP as its source instead of being masqueraded by
    # Podman's rule for the lab network (LAB.md, pod network across hosts).
    return ["-s", str(spec.subnet), "-d", POD_CIDR, "-m", "comment", "--comment", rule_comment(spec),
            "-j", "RETURN"]


def _postrouting() -> list[str]:
    out = run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"]).stdout.decode()
    return [line for line in out.splitlines() if line.startswith("-A ")]


def _is_tagged(line: str, tag: str) -> bool:
    return f"--comment {tag} " in line or f'--comment "{tag}"' in line or line.endswith(f"--comment {tag}")


def nat_rules(spec: LabSpec) -> list[str]:
    """The POSTROUTING rules (iptables -S lines) tagged with this lab's comment."""
    return [line for line in _postrouting() if _is_tagged(line, rule_comment(spec))]


def ensure_nat_rule(spec: LabSpec) -> bool:
    """Exactly one copy of the rule, ahead of Podman's masquerade rules; True if anything changed."""
    rules = _postrouting()
    ours = [i for i, line in enumerate(rules) if _is_tagged(line, rule_comment(spec))]
    # Other labs' rules may sit above ours (each lab inserts at the top); anything else must not.
    if len(ours) == 1 and all("--comment kfab-lab:" in line or '--comment "kfab-lab:' in line
                              for line in rules[:ours[0]]):
        return False
    remove_nat_rules(spec)
    run(["iptables", "-w", "-t", "nat", "-I", "POSTROUTING", "1", *_rule_args(spec)])
    return True


def remove_nat_rules(spec: LabSpec) -> int:
    """Delete every rule carrying this lab's comment (a killed run may have left several)."""
    removed = 0
    for line in nat_rules(spec):
        # `-S` prints the rule as it was added ("-A POSTROUTING ..."): delete it by that same spec.
        args = line.split()
        if args[:2] != ["-A", "POSTROUTING"]:
            continue
        run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", *[a.strip('"') for a in args[2:]]])
        removed += 1
    return removed
