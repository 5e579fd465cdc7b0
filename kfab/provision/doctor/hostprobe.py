"""What `kfab doctor` reads on one host, in one run of python3 there (one SSH round trip): a standalone script
(standard library only, Python 3.7+) sent to the host with its questions as JSON in QUESTIONS; it prints
one JSON object of facts and never changes anything. kfab.provision.doctor.checks judges the facts."""

import errno
import json
import os
import platform
import shutil
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

QUESTIONS = {}  # replaced before sending: {"paths": [...], "ports": [...], "peers": [...], "address": "..."}

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
CONFLICTING = ("dockerd", "kubelet", "k3s", "k3s-server", "k3s-agent", "kube-apiserver", "firewalld")


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def os_release():
    found = {}
    for line in read("/etc/os-release").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value.strip().strip('"')
    return {"id": found.get("ID", ""), "version_id": found.get("VERSION_ID", ""),
            "codename": found.get("VERSION_CODENAME", ""), "pretty": found.get("PRETTY_NAME", "")}


def meminfo():
    found = {}
    for line in read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            found[key] = int(rest.split()[0])
    return {"total_kb": found.get("MemTotal", 0), "available_kb": found.get("MemAvailable", 0)}


def swaps():
    lines = read("/proc/swaps").splitlines()[1:]
    return [{"name": f[0], "size_kb": int(f[2])} for f in (line.split() for line in lines) if len(f) >= 3]


def cgroup():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return {"version": "2", "controllers": read("/sys/fs/cgroup/cgroup.controllers").split(),
                "subtree": read("/sys/fs/cgroup/cgroup.subtree_control").split()}
    hybrid = os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers")
    controllers = sorted(os.listdir("/sys/fs/cgroup")) if os.path.isdir("/sys/fs/cgroup") else []
    return {"version": "hybrid" if hybrid else "1", "controllers": controllers, "subtree": []}


def module_state(name, release):
    """loaded (in /sys/module), builtin, loadable (a .ko for the running kernel), absent, or unknown (this
    kernel's module tree is not on the host, e.g. a container host)."""
    if os.path.isdir("/sys/module/" + name):
        return "loaded"
    base = "/lib/modules/" + release
    if not os.path.isdir(base):
        return "unknown"
    if ("/" + name + ".ko") in read(base + "/modules.builtin"):
        return "builtin"
    for _, _, files in os.walk(base):
        if any(f.split(".ko")[0] == name and ".ko" in f for f in files):
            return "loadable"
    return "absent"


def nf_tables():
    """Does the kernel answer nf_tables' netlink (NFT_MSG_GETGEN)? True, False, or None (cannot tell: e.g. not
    root, which nfnetlink refuses with EPERM)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
    except OSError as exc:
        return False if exc.errno == errno.EPROTONOSUPPORT else None
    try:
        s.settimeout(2)
        msg_type = (10 << 8) | 16  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN
        payload = struct.pack("BBH", socket.AF_UNSPEC, 0, 0)
        s.send(struct.pack("=LHHLL", 16 + len(payload), msg_type, 1 | 4, 1, 0) + payload)  # REQUEST|ACK
        reply = s.recv(65536)
        if struct.unpack("=H", reply[4:6])[0] != 2:   # not NLMSG_ERROR: the generation itself
            return True
        error = -struct.unpack("=i", reply[16:20])[0]
        if error == 0:
            return True
        return False if error in (errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT) else None
    except OSError:
        return None
    finally:
        s.close()


def features(release):
    filesystems = {line.split()[-1] for line in read("/proc/filesystems").splitlines() if line.split()}
    modules = {name: module_state(name, release) for name in ("overlay", "br_netfilter", "nf_tables", "nfs", "nfsd",
                                                               "iscsi_tcp")}
    return {"filesystems": sorted(filesystems), "modules": modules,
            "bridge_nf": os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            "nf_tables": nf_tables()}


def unit_of(pid):
    """The systemd unit a process runs in (from its cgroup path), or ""."""
    for line in read("/proc/%s/cgroup" % pid).splitlines():
        for part in reversed(line.rsplit(":", 1)[-1].split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return ""


def socket_owners():
    """socket inode -> (pid, comm, cmdline, unit) of the process holding it (any process: we run as root)."""
    owners = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                owners.setdefault(link[8:-1], (int(pid), read("/proc/%s/comm" % pid).strip(),
                                               read("/proc/%s/cmdline" % pid).replace("\0", " ").strip(),
                                               unit_of(pid)))
    return owners


def address_of(hex_addr):
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listeners(ports):
    wanted = set(ports)
    found = []
    for proto, listen_state in (("tcp", TCP_LISTEN), ("tcp6", TCP_LISTEN), ("udp", UDP_UNCONNECTED),
                                ("udp6", UDP_UNCONNECTED)):
        for line in read("/proc/net/" + proto).splitlines()[1:]:
            f = line.split()
            addr, port = f[1].split(":")
            if f[3] == listen_state and int(port, 16) in wanted:
                found.append({"proto": proto.rstrip("6"), "address": address_of(addr), "port": int(port, 16),
                              "inode": f[9]})
    if found:
        owners = socket_owners()
        for entry in found:
            pid, comm, cmdline, unit = owners.get(entry.pop("inode"), (None, "", "", ""))
            entry.update(pid=pid, comm=comm, cmdline=cmdline[:200], unit=unit)
    return found


def path_space(path):
    """Free space of the filesystem a data path is (or will be) on: its nearest existing directory."""
    probe = path
    while not os.path.exists(probe) and probe not in ("", "/"):
        probe = os.path.dirname(probe)
    probe = probe or "/"
    st = os.statvfs(probe)
    mount, fstype = "/", ""
    for line in read("/proc/self/mounts").splitlines():
        f = line.split()
        target = f[1].replace("\\040", " ")
        if (probe == target or probe.startswith(target.rstrip("/") + "/")) and len(target) >= len(mount):
            mount, fstype = target, f[2]
    return {"path": path, "existing": probe, "mount": mount, "fstype": fstype,
            "free": st.f_bavail * st.f_frsize, "total": st.f_blocks * st.f_frsize}


def peer(entry):
    """Does the peer's inventory name resolve here, and does its SSH port answer from here?"""
    result = {"name": entry["name"], "address": entry["address"], "resolved": [], "reachable": False, "error": ""}
    try:
        result["resolved"] = sorted({a[4][0] for a in socket.getaddrinfo(entry["name"], None)})
    except OSError:
        pass
    try:
        socket.create_connection((entry["address"], entry["port"]), timeout=2).close()
        result["reachable"] = True
    except OSError as exc:
        result["error"] = str(exc)
    return result


def mtu_of(address):
    """The interface holding the host's inventory address (else the default route's), and its MTU."""
    try:
        address = socket.gethostbyname(address) if address else ""
    except OSError:
        address = ""
    name = ""
    for line in os.popen("ip -o addr show 2>/dev/null").read().splitlines():
        f = line.split()
        if len(f) > 3 and f[2] in ("inet", "inet6") and f[3].split("/")[0] == address:
            name = f[1].split("@")[0]
            break
    for line in read("/proc/net/route").splitlines()[1:]:
        f = line.split()
        if not name and len(f) > 1 and f[1] == "00000000":
            name = f[0]
    return {"interface": name, "mtu": int(read("/sys/class/net/%s/mtu" % name, "0").strip() or 0) if name else 0}


def processes():
    running = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        comm = read("/proc/%s/comm" % pid).strip()
        if comm in CONFLICTING:
            running.setdefault(comm, int(pid))
    return running


def main():
    release = platform.release()
    facts = {
        "time": time.time(), "uid": os.geteuid(), "os": os_release(), "kernel": release,
        "arch": platform.machine(), "hostname": socket.gethostname(), "memory": meminfo(), "swap": swaps(),
        "cgroup": cgroup(), "features": features(release),
        "ip_forward": read("/proc/sys/net/ipv4/ip_forward").strip(),
        "listeners": listeners(QUESTIONS.get("ports", [])),
        "paths": [path_space(p) for p in QUESTIONS.get("paths", [])],
        "peers": list(ThreadPoolExecutor(8).map(peer, QUESTIONS.get("peers", []))),
        "mtu": mtu_of(QUESTIONS.get("address", "")),
        "processes": processes(),
        "apt": bool(shutil.which("apt-get")),
    }
    print(json.dumps(facts))


main()
