#!/usr/bin/env bash
# Installs what kfab and its tests need on a fresh Debian 12 machine (as root): system packages,
# the two Podman settings this kind of machine needs, and the Python environment in .venv.
# Safe to run again: every step checks before it changes anything.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(podman runc debootstrap iptables nftables iproute2 openssh-client etcd-server etcd-client dnsutils
              apt-cacher-ng qemu-system-x86 qemu-utils)  # qemu: the lab's VM hosts (kfab lab up --vms)
# libnfs/libiscsi userspace clients: storage lab tests reach the lab's NFS and iSCSI servers from here
APT_PACKAGES+=(libnfs-utils libiscsi-bin)
# chromium: the dashboard's test drives the page in headless Chromium; faketime: kfab doctor's clock-skew lab test
APT_PACKAGES+=(chromium faketime)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# etcd-server's package starts a default member on :2379; kfab's tests start their own.
if systemctl is-active --quiet etcd 2>/dev/null; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
# Likewise apt-cacher-ng's service on :3142: `kfab cache up` runs its own, with a backend that resolves.
if systemctl is-active --quiet apt-cacher-ng 2>/dev/null; then
    systemctl disable --now apt-cacher-ng >/dev/null 2>&1 || true
fi

# Podman 4.3 on this kind of host: crun refuses hybrid cgroups, and raising RLIMIT_NOFILE/NPROC past the
# current limit is not permitted (see shared LAB.md).
mkdir -p /etc/containers/containers.conf.d
cat > /etc/containers/containers.conf.d/50-kfab.conf <<'CONF'
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
CONF

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import kfab, kubernetes, pytest" 2>/dev/null || [ pyproject.toml -nt .venv/.kfab-installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch .venv/.kfab-installed
fi
echo "setup: ready (.venv)"
