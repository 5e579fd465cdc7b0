"""`kfab doctor` on the session lab (kt1 control plane + etcd + registry, kt2/kt3 workers): faults injected on
real hosts are each reported with the right severity and fix, `kfab up` stops on a fatal one before changing any
host, and a clean lab has nothing fatal.

The lab's hosts are containers sharing this machine's kernel, so two faults are shown through the files the
check reads instead of the kernel itself: a module missing is br_netfilter's /proc/sys/net/bridge hidden under an
empty tmpfs (what a kernel without br_netfilter shows), and swap is a /proc/swaps listing a swap file (a real
`swapon` would put this machine's kernel into swap). A skewed clock is this machine's, shifted with faketime:
the check compares each host's clock with the clock of the machine running kfab."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
SQUATTER = "kfab-doctor-squatter"
# The API server's port as the inventory may set it: free on kt1 even where an earlier test of the session
# left a kfab API server on 6443.
API_PORT = 16443
EXTRA = ["-e", f"kfab_apiserver_port={API_PORT}"]


def doctor(lab, *prefix: str) -> tuple[int, dict]:
    proc = subprocess.run(list(prefix) + KFAB + ["doctor", "-i", str(lab.inventory), "--json"] + EXTRA, cwd=REPO,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def findings(report: dict, host: str, check: str) -> list[dict]:
    return [f for f in report["findings"] if f["host"] == host and f["check"] == check]


@pytest.fixture
def faults(lab):
    """Every fault on the lab's hosts; each removed again afterwards."""
    lab.ssh("kt1", "mkdir -p /var/lib/kfab && mount -t tmpfs -o size=16m kfab-full /var/lib/kfab")
    lab.ssh("kt1", f"systemd-run --unit {SQUATTER} python3 -m http.server --bind 0.0.0.0 {API_PORT} && "
                   f"for i in $(seq 50); do grep -q ':{API_PORT:04X} ' /proc/net/tcp && break; sleep 0.1; done")
    lab.ssh("kt2", "mount -t tmpfs no-br-netfilter /proc/sys/net/bridge")
    lab.ssh("kt3", "printf 'Filename\\tType\\tSize\\tUsed\\tPriority\\n/swapfile file\\t1048572\\t0\\t-2\\n' "
                   "> /root/swaps && mount --bind /root/swaps /proc/swaps")
    try:
        yield
    finally:
        lab.ssh("kt1", f"umount /var/lib/kfab; systemctl stop {SQUATTER}", check=False)
        lab.ssh("kt2", "umount /proc/sys/net/bridge", check=False)
        lab.ssh("kt3", "umount /proc/swaps; rm -f /root/swaps", check=False)


def test_doctor_reports_each_fault_with_its_fix_and_up_stops_before_changing_anything(lab, faults):
    code, report = doctor(lab)
    assert code == 1, report

    [disk] = findings(report, "kt1", "disk")
    assert disk["severity"] == "fatal" and disk["problem"].startswith("/var/lib/kfab (tmpfs)"), disk
    assert "kfab_data_dir" in disk["fix"] and "df -h /var/lib/kfab" in disk["fix"], disk

    [port] = findings(report, "kt1", "port")
    assert port["severity"] == "fatal" and f"{API_PORT}/tcp" in port["problem"] and "python3" in port["problem"], port
    assert f"systemctl disable --now {SQUATTER}.service" in port["fix"] and "kfab_apiserver_port" in port["fix"]

    [module] = [f for f in findings(report, "kt2", "kernel") if "br_netfilter" in f["problem"]]
    assert module["severity"] == "warning", module
    assert module["fix"].startswith("modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/"), module
    assert not [f for f in findings(report, "kt3", "kernel") if "br_netfilter" in f["problem"]]

    [swap] = findings(report, "kt3", "swap")
    assert swap["severity"] == "warning" and "/swapfile" in swap["problem"] and "swapoff -a" in swap["fix"], swap
    assert not findings(report, "kt2", "swap")

    # kfab up: the fatal findings first, and no host touched (role common's first write is the apt proxy
    # file or the sysctl file; the sentinel would be replaced by the sysctl task).
    sysctl_file = "/etc/sysctl.d/90-kfab.conf"
    lab.ssh("kt2", f"cp -a {sysctl_file} /root/90-kfab.saved 2>/dev/null; echo '# sentinel' > {sysctl_file}")
    try:
        proc = subprocess.run(KFAB + ["up", "-i", str(lab.inventory)] + EXTRA, cwd=REPO, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "FATAL    kt1:" in proc.stderr and f"{API_PORT}/tcp" in proc.stderr, proc.stderr
        assert "nothing was changed" in proc.stderr and "PLAY [" not in proc.stdout + proc.stderr
        assert lab.ssh("kt2", f"cat {sysctl_file}").stdout.strip() == "# sentinel"
    finally:
        lab.ssh("kt2", f"rm -f {sysctl_file}; mv /root/90-kfab.saved {sysctl_file} 2>/dev/null || true")


@pytest.mark.skipif(not shutil.which("faketime"), reason="faketime (Debian package faketime) is not installed")
def test_doctor_reports_a_clock_skewed_from_this_machines(lab):
    # This machine 10 minutes ahead: every host is 10 minutes behind it, past the 5 minutes certificates allow.
    code, report = doctor(lab, "faketime", "-f", "+600s")
    assert code == 1
    for host in ("kt1", "kt2", "kt3"):
        [clock] = findings(report, host, "clock")
        assert clock["severity"] == "fatal" and "behind this machine's" in clock["problem"], clock
        assert "timedatectl set-ntp true" in clock["fix"] and "date -s @$(date +%s)" in clock["fix"]


def test_a_clean_lab_has_nothing_fatal(lab):
    code, report = doctor(lab)
    assert code == 0 and not [f for f in report["findings"] if f["severity"] == "fatal"], report
    assert report["hosts"] == ["kt1", "kt2", "kt3"]
    print(f"kfab doctor, 3 lab hosts: {report['seconds']:.2f} s")
