"""Judging one host's facts (hostprobe.py's JSON) against what its roles need (needs.py): findings, each with a
severity, what is wrong, and the exact fix — a command to run on the host or an inventory variable to set.

fatal: `kfab up` would fail on this host (or leave a cluster that cannot work); warning: it would install, but
something will not work or will be slow; info: worth knowing, kfab handles it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kfab.provision.doctor.needs import HostNeeds, Port

FATAL, WARNING, INFO = "fatal", "warning", "info"
SEVERITIES = (FATAL, WARNING, INFO)

MiB = 1024 * 1024
GiB = 1024 * MiB
DISK_FATAL = 1 * GiB        # below this a data path fills up during the install (packages, venv, images)
DISK_WARNING = 4 * GiB
MEMORY_TOTAL_FATAL_KB = 512 * 1024        # too small a host for the node agent, Podman and a pod
MEMORY_AVAILABLE_WARNING_KB = 512 * 1024   # only a warning: the lab's 1 GiB VM workers run with little to spare
# Certificates that kfab issues on this machine are valid from 5 minutes before their issue (kfab.pki.ca's
# BACKDATE): a host further behind refuses them as not yet valid. etcd warns past 1 s of skew between members.
SKEW_FATAL = 300.0
SKEW_WARNING = 1.0
SUPPORTED_OS = {("debian", "12")}
CGROUP_CONTROLLERS = ("cpu", "memory", "pids")


@dataclass(frozen=True)
class Finding:
    severity: str
    host: str
    check: str
    problem: str
    fix: str

    def as_dict(self) -> dict:
        return asdict(self)


def modules_load_fix(module: str) -> str:
    return f"modprobe {module} && echo {module} > /etc/modules-load.d/{module}.conf"


# A kernel feature: how to tell it is there, the severity when it is not, why it matters.
FEATURES = {
    "overlay": (WARNING, "Podman's overlay storage (without it Podman falls back to fuse-overlayfs or vfs: slower, "
                         "every image layer copied)"),
    "br_netfilter": (WARNING, "bridged pod traffic through the firewall (a pod reaching a Service whose endpoint "
                              "is on the same node)"),
    "nf_tables": (FATAL, "the service proxy's nftables rules (ClusterIPs, NodePorts, NetworkPolicies)"),
    "nfs": (WARNING, "mounting NFS volumes (StorageClass kfab-nfs) on this worker"),
    "iscsi_tcp": (WARNING, "logging in to iSCSI volumes (StorageClass kfab-iscsi) on this worker"),
    "nfsd": (FATAL, "nfs_server_backend: kernel (the kernel's NFS server)"),
}


def feature_present(name: str, features: dict) -> bool | None:
    filesystems = set(features.get("filesystems", []))
    state = features.get("modules", {}).get(name)
    if name == "overlay":
        return "overlay" in filesystems or state in ("loaded", "builtin", "loadable")
    if name == "br_netfilter":
        return bool(features.get("bridge_nf"))
    if name == "nf_tables":
        return features.get("nf_tables")
    if name in ("nfs", "nfsd"):
        return (name in filesystems or f"{name}4" in filesystems or state in ("loaded", "builtin", "loadable")
                or (None if state == "unknown" else False))
    return True if state in ("loaded", "builtin", "loadable") else (None if state == "unknown" else False)


def feature_fix(name: str, features: dict) -> str:
    state = features.get("modules", {}).get(name)
    if name == "br_netfilter" or state == "loadable":
        return modules_load_fix(name)
    extra = {"nfs": "apt-get install nfs-common && ", "iscsi_tcp": "apt-get install open-iscsi && ",
             "nfsd": ""}.get(name, "")
    if name == "nfsd":
        return "set nfs_server_backend: ganesha (userspace NFS server) in the inventory, or " + modules_load_fix(name)
    return (f"{extra}{modules_load_fix(name)} (if modprobe finds no module: install the kernel's modules, "
            f"apt-get install linux-image-$(dpkg --print-architecture), and reboot into it)")


def judge(needs: HostNeeds, facts: dict, skew: float, uncertainty: float) -> list[Finding]:
    """Every finding for one host. `skew`: the host's clock minus this machine's (seconds), measured within
    ±`uncertainty` (half the round trip)."""
    host = needs.host
    found: list[Finding] = []

    def add(severity: str, check: str, problem: str, fix: str) -> None:
        found.append(Finding(severity, host, check, problem, fix))

    os_info = facts.get("os", {})
    if not facts.get("apt"):
        add(FATAL, "os", f"{os_info.get('pretty') or 'this OS'} has no apt-get: kfab's roles install Debian "
                         f"packages", "use a Debian 12 (bookworm) host")
    elif (os_info.get("id"), os_info.get("version_id")) not in SUPPORTED_OS:
        add(WARNING, "os", f"{os_info.get('pretty') or os_info.get('id')}: kfab is tested on Debian 12 (bookworm) "
                           f"only", "use Debian 12, or expect package names or versions to differ")

    off = abs(skew) - uncertainty
    if off > SKEW_WARNING:
        direction = "ahead of" if skew > 0 else "behind"
        severity = FATAL if off > SKEW_FATAL else WARNING
        why = ("certificates issued now are not yet valid there" if skew < 0 and severity == FATAL else
               "certificate and token lifetimes, Lease renewals and etcd rely on clocks agreeing")
        add(severity, "clock", f"clock is {abs(skew):.1f} s {direction} this machine's ({why})",
            f"sync it: timedatectl set-ntp true (with systemd-timesyncd or chrony installed); at once: "
            f"date -s @$(date +%s) run there from this machine: ssh {needs.address} sudo date -s @$(date +%s)")

    found += _disk(needs, facts.get("paths", []))

    memory = facts.get("memory", {})
    total, available = memory.get("total_kb", 0), memory.get("available_kb", 0)
    if total < MEMORY_TOTAL_FATAL_KB:
        add(FATAL, "memory", f"{total // 1024} MiB memory in all, under {MEMORY_TOTAL_FATAL_KB // 1024} MiB",
            "give the host more memory (a VM: its memory setting)")
    elif available < MEMORY_AVAILABLE_WARNING_KB:
        add(WARNING, "memory", f"{available // 1024} MiB memory available (of {total // 1024} MiB)",
            "stop what uses it (ps aux --sort=-rss | head) or give the host more memory; "
            f"at least {MEMORY_AVAILABLE_WARNING_KB // 1024} MiB available")

    if "cgroup" in needs.features:
        found += _cgroup(host, facts.get("cgroup", {}))
    for name in needs.features:
        if name == "cgroup":
            continue
        present = feature_present(name, facts.get("features", {}))
        severity, why = FEATURES[name]
        if present is False:
            add(severity, "kernel", f"kernel feature {name} is missing, needed for {why}",
                feature_fix(name, facts.get("features", {})))
        elif present is None:
            add(INFO, "kernel", f"cannot tell whether kernel feature {name} is there (no module tree for kernel "
                                f"{facts.get('kernel')}); needed for {why}", f"check by hand: {modules_load_fix(name)}")

    found += _ports(needs, facts.get("listeners", []))

    if facts.get("ip_forward") != "1":
        add(INFO, "sysctl", "IP forwarding is off (net.ipv4.ip_forward = 0)",
            "none needed: role common turns it on (common_sysctls)")
    swap = facts.get("swap", [])
    if swap and "worker" in needs.roles:
        names = ", ".join(s["name"] for s in swap)
        add(WARNING, "swap", f"swap is on ({names}): pods' memory limits and evictions do not count swapped memory",
            "swapoff -a && sed -i '/\\sswap\\s/s/^/#/' /etc/fstab")

    for peer in facts.get("peers", []):
        if not peer["reachable"]:
            add(WARNING, "network", f"cannot reach {peer['name']} at {peer['address']} (its SSH port): "
                                    f"{peer['error']}", f"route or open the firewall between {host} and {peer['name']}")
        if not peer["resolved"]:
            manages = needs.vars is not None and bool(needs.vars.get("common_manage_etc_hosts", True))
            add(INFO if manages else WARNING, "dns", f"the name {peer['name']} does not resolve here",
                "none needed: role common lists every inventory host in /etc/hosts" if manages else
                f"add '{peer['address']} {peer['name']}' to /etc/hosts, or set common_manage_etc_hosts: true")

    for comm, pid in sorted(facts.get("processes", {}).items()):
        found.append(_conflict(host, comm, pid))
    return found


def _disk(needs: HostNeeds, spaces: list[dict]) -> list[Finding]:
    """One finding per filesystem short of space, naming every data path on it."""
    by_mount: dict[str, list[dict]] = {}
    for space in spaces:
        if space["free"] < DISK_WARNING:
            by_mount.setdefault(space["mount"], []).append(space)
    found = []
    for mount, spaces_on in by_mount.items():
        free = spaces_on[0]["free"]
        paths = [p for s in spaces_on for p in needs.paths if p.path == s["path"]]
        severity = FATAL if free < DISK_FATAL and any(p.fatal_when_short for p in paths) else WARNING
        limit = DISK_FATAL if severity == FATAL else DISK_WARNING
        variables = [p.variable for p in paths if p.variable]
        move = (f", or set {' / '.join(variables)} to a directory on a filesystem with {limit / GiB:.0f} GiB free"
                if variables else "")
        found.append(Finding(severity, needs.host, "disk", f"{mount} ({spaces_on[0]['fstype']}) has "
                             f"{free / MiB:.0f} MiB free, under {limit / GiB:.0f} GiB; on it: "
                             + ", ".join(f"{p.path} ({p.what})" for p in paths),
                             f"free space on {mount} (df -h {mount}; apt-get clean; podman system prune){move}"))
    return found


def _cgroup(host: str, cgroup: dict) -> list[Finding]:
    version = cgroup.get("version")
    if version != "2":
        return [Finding(WARNING, host, "cgroup", f"cgroup {version} hierarchy (not cgroup v2 alone): pod CPU and "
                        f"memory figures and limits are less exact", "boot with systemd.unified_cgroup_hierarchy=1: "
                        "add it to GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot")]
    missing = [c for c in CGROUP_CONTROLLERS if c not in cgroup.get("controllers", [])]
    if missing:
        return [Finding(WARNING, host, "cgroup", f"cgroup v2 controllers missing: {', '.join(missing)} (pod limits "
                        f"on them are not enforced)", "enable them in the kernel command line (e.g. "
                        "cgroup_enable=memory) and reboot")]
    return []


def _binds_same(port: Port, address: str) -> bool:
    wildcard = ("", "0.0.0.0", "::")
    return port.address in wildcard or address in wildcard or port.address == address


def _ports(needs: HostNeeds, listeners: list[dict]) -> list[Finding]:
    found = []
    for port in needs.ports:
        for entry in listeners:
            if entry["port"] != port.port or entry["proto"] != port.proto or not _binds_same(port, entry["address"]):
                continue
            who = f"{entry['comm'] or 'the kernel'}" + (f" (pid {entry['pid']})" if entry["pid"] else "")
            where = f"{port.port}/{port.proto} on {entry['address']}"
            words = set(entry["cmdline"].replace("/", " ").split()) | {entry["comm"]}
            # A socket no process holds is the kernel's own: on 2049 that is the kernel's NFS server.
            kernel_nfsd = entry["pid"] is None and "nfsd" in port.owners
            if kernel_nfsd or any(owner in words or owner in entry["comm"] for owner in port.owners):
                found.append(Finding(INFO, needs.host, "port", f"{where} is served by {who}: {port.service} from an "
                                     f"earlier install", "none needed"))
                break
            move = f", or set {port.variable} to a free port in the inventory" if port.variable else ""
            unit = entry.get("unit", "")
            stop = (f"systemctl disable --now {unit}" if unit.endswith(".service") else
                    f"kill {entry['pid']}" if entry["pid"] else f"ss -lntup 'sport = :{port.port}' and stop it")
            found.append(Finding(FATAL, needs.host, "port", f"{where} is taken by {who}"
                                 + (f" in {unit}" if unit else "") + f"; {port.service} needs it", f"{stop}{move}"))
            break
    return found


CONFLICT_FIXES = {
    "dockerd": (WARNING, "Docker is running: its iptables rules (FORWARD policy DROP) drop pod traffic between hosts",
                "systemctl disable --now docker.service docker.socket (or apt-get remove docker-ce docker.io)"),
    "firewalld": (WARNING, "firewalld is running: it drops traffic to the API server, kubelet, DNS and NodePorts "
                           "unless each is opened", "systemctl disable --now firewalld (or open 6443/tcp, 10250/tcp, "
                                                    "53, 80, 443, 30000-32767/tcp with firewall-cmd --permanent)"),
}


def _conflict(host: str, comm: str, pid: int) -> Finding:
    if comm in CONFLICT_FIXES:
        severity, problem, fix = CONFLICT_FIXES[comm]
        return Finding(severity, host, "software", f"{problem} (pid {pid})", fix)
    # kubelet, k3s, kube-apiserver: another Kubernetes on the host fights kfab's over ports, pods and iptables.
    return Finding(FATAL, host, "software", f"another Kubernetes is running: {comm} (pid {pid})",
                   f"remove it first: systemctl disable --now {comm} (k3s: /usr/local/bin/k3s-uninstall.sh)")
