"""The node's CPU time and working set come from the cgroup its init runs in: the root on a machine, the
container's own cgroup on a host that is a container sharing the machine's cgroup tree (the lab's hosts)."""

from __future__ import annotations

from pathlib import Path

from kfab.node.resource_metrics import host_cgroups, node_cpu_seconds, node_working_set

LAB_HOST = "libpod_parent/libpod-8dc2979d"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v1_tree(root: Path, init_cgroup: str) -> tuple[Path, Path]:
    """A cgroup v1 tree where the machine has used 500 s and 8 GiB, the lab host 12.5 s and 300 MiB."""
    cgroup, proc = root / "cgroup", root / "proc"
    _write(proc / "1" / "cgroup", init_cgroup)
    _write(cgroup / "cpuacct" / "cpuacct.usage", "500000000000\n")
    _write(cgroup / "cpuacct" / LAB_HOST / "cpuacct.usage", "12500000000\n")
    _write(cgroup / "memory" / "memory.usage_in_bytes", str(8 << 30))
    _write(cgroup / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    _write(cgroup / "memory" / LAB_HOST / "memory.usage_in_bytes", str(300 << 20))
    _write(cgroup / "memory" / LAB_HOST / "memory.limit_in_bytes", "9223372036854771712")
    _write(cgroup / "memory" / LAB_HOST / "memory.stat", f"cache 1\ntotal_inactive_file {100 << 20}\n")
    _write(proc / "meminfo", "MemTotal:       16000000 kB\nMemAvailable:    4000000 kB\n")
    return cgroup, proc


def test_a_host_that_is_a_container_counts_its_own_cgroup_not_the_machine(tmp_path):
    cgroup, proc = _v1_tree(tmp_path, f"4:memory:/{LAB_HOST}/init.scope\n2:cpuacct:/{LAB_HOST}\n"
                                      f"1:cpu:/{LAB_HOST}\n0::/{LAB_HOST}/init.scope\n")
    assert host_cgroups(proc)["cpuacct"] == LAB_HOST and host_cgroups(proc)["memory"] == LAB_HOST
    assert node_cpu_seconds(cgroup, proc) == 12.5
    assert node_working_set(cgroup, proc) == 200 << 20   # usage minus inactive file pages


def test_a_machine_counts_the_root(tmp_path):
    cgroup, proc = _v1_tree(tmp_path, "4:memory:/\n2:cpuacct:/\n9:name=systemd:/init.scope\n0::/init.scope\n")
    assert node_cpu_seconds(cgroup, proc) == 500.0
    assert node_working_set(cgroup, proc) == 12000000 * 1024   # the root, unlimited: MemTotal - MemAvailable


def test_cgroup_v2_init_scope_stands_for_the_root(tmp_path):
    cgroup, proc = tmp_path / "cgroup", tmp_path / "proc"
    _write(proc / "1" / "cgroup", "0::/init.scope\n")
    _write(cgroup / "cpu.stat", "usage_usec 7000000\nuser_usec 1\n")
    _write(cgroup / "init.scope" / "cpu.stat", "usage_usec 10\n")
    _write(cgroup / "memory.current", str(1 << 30))
    _write(cgroup / "memory.stat", f"inactive_file {256 << 20}\n")
    assert host_cgroups(proc) == {"": ""}
    assert node_cpu_seconds(cgroup, proc) == 7.0
    assert node_working_set(cgroup, proc) == 768 << 20
