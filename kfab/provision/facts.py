"""Facts: what a host is, read once per host per run with one command, offered to tasks as `kfab_facts`
(kfab_facts.os_id, os_version, os_codename, arch, kernel, cpus, memory_mb, hostname,
default_ipv4, default_interface, init, bridge_nf, user)."""

from __future__ import annotations

FACTS_SCRIPT = r"""
. /etc/os-release 2>/dev/null
echo "os_id=$ID"; echo "os_version=$VERSION_ID"; echo "os_codename=$VERSION_CODENAME"
echo "arch=$(uname -m)"; echo "kernel=$(uname -r)"; echo "cpus=$(nproc)"
echo "memory_mb=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)"
echo "hostname=$(hostname)"
route=$(ip -4 route get 1.1.1.1 2>/dev/null | head -n1)
echo "default_ipv4=$(echo "$route" | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
echo "default_interface=$(echo "$route" | sed -n 's/.* dev \([^ ]*\).*/\1/p')"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && echo "bridge_nf=yes" || echo "bridge_nf=no"
echo "user=$(id -un)"
"""

INTS = ("cpus", "memory_mb")
BOOLS = ("bridge_nf",)


def parse_facts(output: str) -> dict:
    facts: dict = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key in INTS:
            facts[key] = int(value) if value.isdigit() else None
        elif key in BOOLS:
            facts[key] = value == "yes"
        else:
            facts[key] = value
    return facts


def ansible_facts(facts) -> dict:
    """The gathered facts under Ansible's names (ansible_distribution, ansible_os_family, ansible_default_ipv4,
    ... and the ansible_facts mapping), for roles written against Ansible's setup module. A value that is not
    a mapping (preflight's stand-in for facts not gathered yet) stands in for each name."""
    names = ("hostname", "nodename", "fqdn", "distribution", "distribution_release", "distribution_version",
             "distribution_major_version", "os_family", "architecture", "kernel", "processor_vcpus",
             "processor_nproc", "memtotal_mb", "default_ipv4", "service_mgr", "user_id", "system")
    if not isinstance(facts, dict):
        found = {name: facts for name in names}
    else:
        os_id = str(facts.get("os_id") or "")
        distribution = {"debian": "Debian", "ubuntu": "Ubuntu"}.get(os_id, os_id.capitalize())
        version = str(facts.get("os_version") or "")
        found = {
            "hostname": str(facts.get("hostname") or "").split(".")[0], "nodename": facts.get("hostname"),
            "fqdn": facts.get("hostname"), "distribution": distribution,
            "distribution_release": facts.get("os_codename"), "distribution_version": version,
            "distribution_major_version": version.split(".")[0],
            "os_family": "Debian" if os_id in ("debian", "ubuntu") else distribution,
            "architecture": facts.get("arch"), "kernel": facts.get("kernel"),
            "processor_vcpus": facts.get("cpus"), "processor_nproc": facts.get("cpus"),
            "memtotal_mb": facts.get("memory_mb"),
            "default_ipv4": {"address": facts.get("default_ipv4"), "interface": facts.get("default_interface")},
            "service_mgr": facts.get("init"), "user_id": facts.get("user"), "system": "Linux",
        }
    return {f"ansible_{k}": v for k, v in found.items()} | {"ansible_facts": found}


def gather(host) -> dict:
    result = host.run(FACTS_SCRIPT, become=False)
    if result.rc != 0 and not result.stdout:
        raise RuntimeError(f"gathering facts failed: {result.stderr.strip()}")
    return parse_facts(result.stdout)
