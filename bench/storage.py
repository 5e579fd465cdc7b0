"""Benchmark storage on the storage lab (tests/lab/inventory/storage.yml, 10.93.0.0/24): time from PVC create to
Bound (dynamic NFS, dynamic iSCSI), pod start (create -> Running and Ready) without a volume and with each kind,
and sequential write/read MB/s through a pod's mount (NFS, iSCSI) next to the same on the server's own disk.

Pods run on the QEMU VM workers (software emulation: slow CPUs, so read the MB/s as this lab's, not the
protocols'). Sizes: --mib MiB per transfer; writes end with fsync, reads follow a drop of the VM's page cache.
Brings the lab up and installs it (`kfab up`), and takes it down at the end; --reuse uses a lab already up
and installed, --keep leaves it running.
    .venv/bin/python bench/storage.py [--claims 3] [--pods 2] [--mib 64] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.lab.storage_site import NS, SLEEP, VMS, StorageSite, claim, pod, pod_spec, poll  # noqa: E402

CLASSES = ("kfab-nfs", "kfab-iscsi")
NFS_ROOT = "/srv/kfab-nfs/dynamic"  # role nfs-server's dynamic root (a tmpfs on the lab's container host)
LUN_DIR = "/srv/kfab-iscsi"         # role iscsi-target's backing files (this machine's disk, via overlay)


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} s, min {min(values):.2f}, max {max(values):.2f} (n={len(values)})"


def bound_time(site: StorageSite, name: str, storage_class: str) -> float | None:
    started = time.monotonic()
    site.apply(claim(name, storage_class))
    ok = poll(lambda: site.get("pvc", name).get("status", {}).get("phase") == "Bound", timeout=120)
    return time.monotonic() - started if ok else None


def start_time(site: StorageSite, name: str, volumes: list[dict]) -> float | None:
    started = time.monotonic()
    site.apply(pod(name, pod_spec(SLEEP, volumes, nodeName=VMS[0])))
    ok = poll(lambda: site.running(name), timeout=300)
    return time.monotonic() - started if ok else None


def busybox_seconds(stderr_text: str) -> float:
    """busybox `time`: 'real\t0m 1.23s' (busybox dd prints no rate)."""
    m = re.search(r"real\s+(\d+)m\s*([\d.]+)s", stderr_text)
    if not m:
        raise RuntimeError(f"no timing in {stderr_text!r}")
    return int(m.group(1)) * 60 + float(m.group(2))


def pod_throughput(site: StorageSite, name: str, mib: int) -> tuple[float, float]:
    """MB/s (MiB/s) written (fsync at the end) and read back (after dropping the VM's page cache)."""
    node = site.get("pod", name)["spec"]["nodeName"]
    out = site.exec(name, f"time dd if=/dev/zero of=/data/bench bs=1M count={mib} conv=fsync 2>&1", timeout=600)
    write = mib / busybox_seconds(out)
    site.ssh(node, "sync; echo 3 > /proc/sys/vm/drop_caches")
    out = site.exec(name, "time dd if=/data/bench of=/dev/null bs=1M 2>&1", timeout=600)
    read = mib / busybox_seconds(out)
    site.exec(name, "rm -f /data/bench")
    return write, read


def server_throughput(site: StorageSite, directory: str, mib: int) -> tuple[float, float, str]:
    """The same on st1's own storage with GNU dd; reads use O_DIRECT where the filesystem allows it (a
    container host must not drop the machine's page cache)."""
    f = f"{directory}/bench-local"
    t0 = time.monotonic()
    site.ssh("st1", f"dd if=/dev/zero of={f} bs=1M count={mib} conv=fsync status=none")
    write = mib / (time.monotonic() - t0)
    how = "O_DIRECT"
    t0 = time.monotonic()
    if site.ssh("st1", f"dd if={f} of=/dev/null bs=1M iflag=direct status=none", check=False).returncode != 0:
        how = "page cache"
        t0 = time.monotonic()
        site.ssh("st1", f"dd if={f} of=/dev/null bs=1M status=none")
    read = mib / (time.monotonic() - t0)
    site.ssh("st1", f"rm -f {f}")
    return write, read, how


def run(site: StorageSite, claims: int, pods: int, mib: int) -> None:
    print("PVC create -> Bound (dynamic provisioning by kfab provisioner on st1):")
    for cls in CLASSES:
        times = [t for i in range(claims) if (t := bound_time(site, f"bench-{cls}-{i}", cls)) is not None]
        print(f"  {cls:<11} {summary(times)}")

    print(f"Pod start on {VMS[0]} (create -> Running and Ready; TCG VM):")
    kinds = {"no volume": None, "kfab-nfs": "bench-kfab-nfs-0", "kfab-iscsi": "bench-kfab-iscsi-0"}
    for label, claim_name in kinds.items():
        times = []
        for i in range(pods):
            name = f"bench-start-{label.split()[0].replace('kfab-', '')}-{i}"
            volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}] if claim_name else []
            t = start_time(site, name, volumes)
            if t is not None:
                times.append(t)
            if claim_name and i == pods - 1 and t is not None:
                write, read = pod_throughput(site, name, mib)
                print(f"  throughput {label:<10} through the pod's mount: write {write:6.1f} MiB/s, "
                      f"read {read:6.1f} MiB/s ({mib} MiB)")
            # RWO iSCSI: the next pod must wait for this one's volume to be free on the node anyway; one at a time
            site.kubectl("delete", "pod", "-n", NS, name, "--wait=true", timeout=180)
        print(f"  {label:<11} {summary(times)}")

    print(f"Server st1's own storage ({mib} MiB, GNU dd):")
    for label, directory in (("NFS root (tmpfs)", NFS_ROOT), ("LUN files' disk", LUN_DIR)):
        write, read, how = server_throughput(site, directory, mib)
        print(f"  {label:<17} write {write:7.1f} MiB/s, read {read:7.1f} MiB/s ({how})")

    site.kubectl("delete", "pvc", "-n", NS, *[f"bench-{cls}-{i}" for cls in CLASSES for i in range(claims)],
                 "--wait=true", timeout=300)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=3, help="claims per class to time (default 3)")
    parser.add_argument("--pods", type=int, default=2, help="pod starts per kind (default 2)")
    parser.add_argument("--mib", type=int, default=64, help="MiB per throughput transfer (default 64)")
    parser.add_argument("--reuse", action="store_true", help="use the storage lab already up and installed")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    site = StorageSite().start(reuse=args.reuse)
    try:
        run(site, args.claims, args.pods, args.mib)
    finally:
        if not args.keep:
            site.lab.lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
