"""`kfab doctor`: a preflight of every host before anything changes. Each host is reached as `kfab up` reaches it
(same connection variables, host key checks, sudo) and answers one run of hostprobe.py (one round trip);
checks.py judges its facts against what the roles the plays give it need (needs.py). Hosts in parallel."""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from kfab.provision.context import RunVars
from kfab.provision.doctor.checks import FATAL, INFO, SEVERITIES, WARNING, Finding, judge
from kfab.provision.doctor.needs import HostNeeds, host_needs, roles_of, with_peers
from kfab.provision.errors import HostUnreachable, ProvisionError
from kfab.provision.inputs import every_role_play, load_inputs
from kfab.provision.inventory import Inventory
from kfab.provision.local import LocalConnection
from kfab.provision.modules.base import q
from kfab.provision.playbook import Play
from kfab.provision.remote import RemoteHost
from kfab.provision.ssh import connect, target_from_vars

PROBE = (Path(__file__).parent / "hostprobe.py").read_text()
# Findings about reaching or reading a host rather than about the host: `kfab up` reports a host it cannot reach
# or become root on itself (unreachable: exit 4), and a probe that failed says nothing against the host.
NOT_GATING = ("ssh", "sudo", "probe")


@dataclass
class Examination:
    hosts: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == FATAL]

    def as_dict(self) -> dict:
        return {"hosts": self.hosts, "seconds": round(self.seconds, 3),
                "counts": {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES},
                "findings": [f.as_dict() for f in self.findings]}


def probe_command(questions: dict) -> str:
    script = PROBE.replace("QUESTIONS = {}", f"QUESTIONS = json.loads({json.dumps(questions)!r})", 1)
    return f"python3 -I -c {q(script)}"


def examine(inventory: Inventory, plays: list[Play], extra_vars: dict, hosts: list[str],
            become_password: str | None = None, forks: int = 10, include_local: bool = True) -> Examination:
    """Probe `hosts` in parallel and judge each; findings sorted fatal first, then by host.
    include_local=False leaves out hosts with `ansible_connection: local` (this machine itself)."""
    started = time.monotonic()
    run_vars = RunVars(inventory, extra_vars)
    every_role = every_role_play(plays)
    roles = roles_of(plays, inventory)
    needs = {h: host_needs(h, inventory, roles[h], run_vars.host_vars(h, every_role)) for h in hosts}
    if not include_local:
        needs = {h: n for h, n in needs.items() if not _is_local(n.vars)}
        hosts = list(needs)
    with_peers(needs)
    exam = Examination(hosts=hosts)
    if not hosts:
        return exam
    with ThreadPoolExecutor(max(1, min(forks, len(hosts)))) as pool:
        results = list(pool.map(lambda h: _examine_host(needs[h], inventory, become_password), hosts))
    for host, (facts, findings) in zip(hosts, results):
        if facts is not None:
            exam.facts[host] = facts
        exam.findings += findings
    exam.findings += _mtu(exam.facts)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    exam.findings.sort(key=lambda f: (order[f.severity], hosts.index(f.host), f.check))
    exam.seconds = time.monotonic() - started
    return exam


def _examine_host(needs: HostNeeds, inventory: Inventory, become_password: str | None
                  ) -> tuple[dict | None, list[Finding]]:
    host, v = needs.host, needs.vars
    findings: list[Finding] = []
    try:
        target = target_from_vars(host, v, inventory.base)
        password = become_password if become_password is not None else v.get(
            "ansible_become_password", v.get("ansible_become_pass"))
        conn = LocalConnection() if _is_local(v) else connect(target)
        remote = RemoteHost(host, conn, become_password=None if password is None else str(password))
    except (HostUnreachable, ProvisionError, ValueError, TypeError, paramiko.SSHException, OSError) as exc:
        return None, [Finding(FATAL, host, "ssh", f"cannot connect over SSH: {exc}",
                              f"check ansible_host, ansible_user, ansible_port and ansible_ssh_private_key_file of "
                              f"{host}; try: ssh {v.get('ansible_user', 'root')}@{needs.address} true")]
    try:
        command = probe_command(needs.questions())
        sent = time.time()
        result = remote.run(command, become=True)
        answered = time.time()
        if result.rc != 0 and "sudo" in result.stderr:
            findings.append(Finding(FATAL, host, "sudo", f"sudo as {target.user} fails: {result.stderr.strip()}",
                                    "pass -K (ask for the sudo password), set ansible_become_password, or allow "
                                    f"{target.user} sudo without one: echo '{target.user} ALL=(ALL) NOPASSWD: ALL' "
                                    f"> /etc/sudoers.d/kfab"))
            sent = time.time()
            result = remote.run(command, become=False)
            answered = time.time()
        if result.rc == 127 or "python3: not found" in result.stderr:
            return None, findings + [Finding(FATAL, host, "os", "python3 is not installed (kfab runs on it there)",
                                             "apt-get install -y python3")]
        if result.rc != 0:
            return None, findings + [Finding(FATAL, host, "probe", f"the host probe failed (exit {result.rc}): "
                                             f"{(result.stderr.strip() or result.stdout.strip())[-300:]}",
                                             "run `kfab doctor -v` and report the output")]
        facts = json.loads(result.stdout)
    except (paramiko.SSHException, OSError, EOFError, ValueError) as exc:
        return None, findings + [Finding(FATAL, host, "ssh", f"the connection failed while probing: {exc}",
                                         f"check that {needs.address} stays reachable and sshd is running")]
    finally:
        remote.close()
    skew = facts["time"] - (sent + answered) / 2
    facts["skew"] = round(skew, 3)
    return facts, findings + judge(needs, facts, skew, (answered - sent) / 2)


def _is_local(v) -> bool:
    return str(v.get("ansible_connection", "ssh")) == "local"


def _mtu(facts: dict[str, dict]) -> list[Finding]:
    """Pod traffic between hosts is routed, not encapsulated: every host's link must carry the same MTU."""
    mtus = {h: f["mtu"]["mtu"] for h, f in facts.items() if f.get("mtu", {}).get("mtu")}
    if len(set(mtus.values())) < 2:
        return []
    common = Counter(mtus.values()).most_common(1)[0][0]
    return [Finding(WARNING, h, "mtu", f"{facts[h]['mtu']['interface']} has MTU {m} while the other hosts' is "
                    f"{common}: large packets between them are dropped or fragmented",
                    f"ip link set dev {facts[h]['mtu']['interface']} mtu {common} (and in the interface's "
                    f"configuration, e.g. /etc/network/interfaces)") for h, m in mtus.items() if m != common]


def render(exam: Examination, verbose: bool = False) -> str:
    """The findings for people: fatal first, each with its fix; info only with `verbose`."""
    lines = []
    for f in exam.findings:
        if f.severity == INFO and not verbose:
            continue
        lines.append(f"{f.severity.upper():8} {f.host}: {f.problem}")
        lines.append(f"{'':8} fix: {f.fix}")
    counts = Counter(f.severity for f in exam.findings)
    hosts = len(exam.hosts)
    summary = (f"{hosts} host{'s' if hosts != 1 else ''} examined in {exam.seconds:.1f} s: "
               + ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES))
    return "\n".join(lines + [summary + ("" if verbose or not counts.get(INFO) else " (-v shows info)")])


def doctor(inventory_path: str, playbook: str, extra_vars: list[str], *, limit: str | None = None,
           as_json: bool = False, verbose: int = 0, forks: int = 10, ask_become_pass: bool = False,
           vault_password_files: list[str] = ()) -> int:
    """`kfab doctor`: exit 0 when no finding is fatal, 1 when one is (or the inputs are invalid)."""
    try:
        inputs = load_inputs(inventory_path, playbook, extra_vars, vault_password_files)
    except ProvisionError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    hosts = inputs.inventory.select(limit) if limit else list(inputs.inventory.hosts)
    if not hosts:
        print(f"ERROR: --limit {limit!r} matches no host of {inventory_path}", file=sys.stderr)
        return 1
    become_password = getpass.getpass("BECOME password: ") if ask_become_pass else None
    exam = examine(inputs.inventory, inputs.plays, inputs.extra_vars, hosts, become_password, forks)
    if as_json:
        print(json.dumps(exam.as_dict() | ({"facts": exam.facts} if verbose else {}), indent=2))
    else:
        print(render(exam, verbose=bool(verbose)))
    return 1 if exam.fatal else 0
