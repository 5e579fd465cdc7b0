"""kfab doctor: the host probe reads this machine as it reads a host, and each check turns facts into the
finding (severity, fix) an operator acts on. Lab faults: tests/lab/test_doctor.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from kfab.provision.doctor import probe_command
from kfab.provision.doctor.checks import FATAL, INFO, WARNING, judge
from kfab.provision.doctor.needs import DataPath, HostNeeds, Port

GiB = 1024 ** 3


def probe(questions: dict) -> dict:
    proc = subprocess.run(["/bin/sh", "-c", probe_command(questions)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_probe_names_the_process_listening_on_a_port_and_the_filesystem_of_a_data_path(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        facts = probe({"ports": [port], "paths": [str(tmp_path / "not" / "yet")], "peers": [], "address": ""})
    [entry] = facts["listeners"]
    assert (entry["proto"], entry["address"], entry["port"], entry["pid"]) == ("tcp", "127.0.0.1", port, os.getpid())
    [space] = facts["paths"]
    assert space["existing"] == str(tmp_path) and space["free"] > 0
    assert facts["os"]["id"] and facts["memory"]["total_kb"] > 0 and abs(facts["time"] - __import__("time").time()) < 60


def needs(**kw) -> HostNeeds:
    n = HostNeeds("h1", "10.0.0.1", roles=kw.pop("roles", {"worker"}), groups={"workers"})
    for k, v in kw.items():
        setattr(n, k, v)
    return n


def facts(**kw) -> dict:
    base = {"os": {"id": "debian", "version_id": "12"}, "apt": True,
            "memory": {"total_kb": 16 << 20, "available_kb": 8 << 20},
            "cgroup": {"version": "2", "controllers": ["cpu", "memory", "pids"]}, "ip_forward": "1",
            "features": {"filesystems": ["overlay"], "bridge_nf": True, "nf_tables": True, "modules": {}}}
    return base | kw


def test_a_port_taken_by_another_service_is_fatal_and_names_its_unit_and_the_variable():
    port = Port(6443, "tcp", "the kfab API server", "kfab_apiserver_port", ("kfab",))
    taken = {"proto": "tcp", "address": "0.0.0.0", "port": 6443, "pid": 42, "comm": "nginx",
             "cmdline": "nginx: master process", "unit": "nginx.service"}
    [f] = judge(needs(ports=[port]), facts(listeners=[taken]), 0, 0)
    assert f.severity == FATAL and "6443/tcp" in f.problem and "nginx (pid 42)" in f.problem
    assert f.fix == "systemctl disable --now nginx.service, or set kfab_apiserver_port to a free port in the inventory"
    ours = taken | {"comm": "kfab", "cmdline": "/opt/kfab/venv/bin/python /opt/kfab/venv/bin/kfab server"}
    assert [f.severity for f in judge(needs(ports=[port]), facts(listeners=[ours]), 0, 0)] == [INFO]
    # DNS binds the host's address: resolved on 127.0.0.53 is no conflict.
    dns = Port(53, "udp", "cluster DNS", "dns_port", ("kfab",), "10.0.0.1")
    resolved = taken | {"proto": "udp", "address": "127.0.0.53", "port": 53, "comm": "systemd-resolve"}
    assert judge(needs(ports=[dns]), facts(listeners=[resolved]), 0, 0) == []


def test_a_full_filesystem_is_one_finding_naming_every_data_path_on_it():
    paths = [DataPath("/var/lib/kfab", "kfab's data", "kfab_data_dir"),
             DataPath("/var/lib/kfab/state", "the SQLite state store", "state_store_sqlite_dir")]
    spaces = [{"path": p.path, "mount": "/var/lib/kfab", "fstype": "tmpfs", "free": 16 << 20} for p in paths]
    [f] = judge(needs(paths=paths), facts(paths=spaces), 0, 0)
    assert f.severity == FATAL and f.problem.startswith("/var/lib/kfab (tmpfs) has 16 MiB free")
    assert "kfab_data_dir / state_store_sqlite_dir" in f.fix
    roomy = [s | {"free": 2 * GiB} for s in spaces]
    assert [f.severity for f in judge(needs(paths=paths), facts(paths=roomy), 0, 0)] == [WARNING]


def test_a_small_filesystem_for_volume_storage_is_a_warning_not_a_stop():
    # The storage lab exports NFS from a 256 MiB tmpfs on purpose: how much volume storage needs is the claims'.
    exports = DataPath("/srv/kfab-nfs", "NFS exports", "nfs_server_base_dir", fatal_when_short=False)
    space = {"path": exports.path, "mount": "/srv/kfab-nfs", "fstype": "tmpfs", "free": 256 << 20}
    [f] = judge(needs(paths=[exports]), facts(paths=[space]), 0, 0)
    assert f.severity == WARNING and "nfs_server_base_dir" in f.fix
    # ... unless kfab's own data shares that filesystem
    data = DataPath("/var/lib/kfab", "kfab's data", "kfab_data_dir")
    shared = [space, space | {"path": data.path}]
    assert [f.severity for f in judge(needs(paths=[exports, data]), facts(paths=shared), 0, 0)] == [FATAL]


def test_clock_skew_counts_the_round_trips_uncertainty():
    def clock(skew, uncertainty):
        return [f.severity for f in judge(needs(), facts(), skew, uncertainty) if f.check == "clock"]
    assert clock(0.8, 0.1) == [] and clock(1.5, 0.6) == []
    assert clock(-3, 0.1) == [WARNING] and clock(-600, 0.1) == [FATAL]


def test_missing_kernel_features_swap_and_other_kubernetes_on_a_worker():
    f = facts(features={"filesystems": [], "bridge_nf": False, "nf_tables": False,
                        "modules": {"overlay": "loadable", "br_netfilter": "unknown"}},
              swap=[{"name": "/swapfile", "size_kb": 1024}], processes={"kubelet": 7, "dockerd": 8})
    found = {(x.check, x.severity, x.fix.split(" (")[0]) for x in
             judge(needs(features=["overlay", "br_netfilter", "nf_tables"]), f, 0, 0)}
    assert ("kernel", FATAL, "modprobe nf_tables && echo nf_tables > /etc/modules-load.d/nf_tables.conf") in found
    load_br_netfilter = "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/br_netfilter.conf"
    assert ("kernel", WARNING, load_br_netfilter) in found
    assert not [x for x in found if "overlay" in x[2]]   # loadable: mounting loads it
    assert ("swap", WARNING, "swapoff -a && sed -i '/\\sswap\\s/s/^/#/' /etc/fstab") in found
    assert ("software", FATAL, "remove it first: systemctl disable --now kubelet") in found
    assert ("software", WARNING, "systemctl disable --now docker.service docker.socket") in found
