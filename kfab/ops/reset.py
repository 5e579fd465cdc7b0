"""`kfab reset -i INVENTORY [--limit PATTERN] [--yes]`: remove kfab from hosts, leaving them as before `kfab up`.

Removed on each host: kfab's systemd units (stopped, disabled, deleted), the Podman pods the node agent made
(picked by kfab's pod label) and its `podnet` network, the proxy's nftables table `ip kfab`, the host-gw pod
routes (routing protocol 77) and the no-SNAT rule, /opt/kfab, /etc/kfab, /var/lib/kfab, the etcd member's
certificates and data, the registry's configuration and images, the registries.conf.d and apt proxy drop-ins.
etcd and the registry (Debian packages) are stopped and disabled. Kept: Debian packages, /etc/hosts, the host
name, containers.conf and the forwarding sysctls of role common, and on this machine the cluster CA (a later
`kfab up` reuses it). Like `kubeadm reset`, it asks first unless --yes.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from kfab.ops.cluster import Cluster, OpsError
from kfab.provision.modules.base import q

KFAB_UNITS = ("kfab-node", "kfab-proxy", "kfab-dns", "kfab-ingress", "kfab-vip", "kfab-scheduler",
              "kfab-controller-manager", "kfab-apiserver")
POD_LABEL = "kfab.io/pod-uid"      # kfab/node/runtime.py LABEL_UID
NFT_TABLE = "ip kfab"              # kfab/proxy/rules.py TABLE
ROUTE_PROTO = "77"                 # kfab/node/podnet.py ROUTE_PROTO
MANAGED = "Managed by kfab"        # first line of every config file kfab's roles template
FAILED_MARK = "kfab-reset-failed:"  # the reset script's line for something it could not remove


def reset_script(v: dict) -> str:
    """The shell script that takes kfab off one host; every step tolerates "already gone"."""
    units = " ".join(f"{u}.service" for u in KFAB_UNITS)
    cidr = q(v["cluster_cidr"])
    paths = " ".join(q(p) for p in (
        v["venv_root"], v["config_dir"], v["data_dir"], v["etcd_pki_dir"], v["etcd_data_dir"],
        "/etc/containers/registries.conf.d/kfab-registry.conf", "/etc/apt/apt.conf.d/01kfab-proxy"))
    unit_files = " ".join(f"/etc/systemd/system/{u}.service" for u in KFAB_UNITS)
    return f"""
for u in {units}; do systemctl disable --now "$u" >/dev/null 2>&1; done
# kfab backup --schedule's timer goes; the snapshots it took in /var/backups/kfab stay.
systemctl disable --now kfab-backup.timer >/dev/null 2>&1
rm -f /etc/systemd/system/kfab-backup.service /etc/systemd/system/kfab-backup.timer /usr/local/sbin/kfab-backup
if grep -qs '{MANAGED}' /etc/default/etcd; then
  systemctl disable --now etcd.service >/dev/null 2>&1; rm -f /etc/default/etcd
  rm -f /etc/systemd/system/etcd.service.d/kfab-restart.conf; systemctl daemon-reload
fi
if grep -qs '{MANAGED}' /etc/docker/registry/config.yml; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1
  # the images go; the directory is the package's (its owner and mode), a later kfab up needs it
  rm -f /etc/docker/registry/config.yml; find {q(v["registry_dir"])} -mindepth 1 -delete 2>/dev/null
fi
if command -v podman >/dev/null; then
  # The agent is stopped, but Podman's API service may still be carrying out requests it sent (a pod being
  # made under load): stop the service first, or such a pod appears after the removal below.
  socket_was=$(systemctl is-active podman.socket 2>/dev/null)
  systemctl stop podman.socket podman.service >/dev/null 2>&1
  # A pod Podman will not remove as it is (a container stuck stopping, a dead conmon) gets its processes
  # killed and its containers removed one by one first; one that still stays is named, with Podman's reason.
  # Stop first and let each container's own cleanup finish: Podman 4.3 removing a pod while that cleanup runs
  # can wreck the host's container store (see kfab/node/runtime.py remove_pod).
  for p in $(podman pod ps -q --filter label={POD_LABEL}); do timeout 60 podman pod stop -t 0 "$p" >/dev/null 2>&1; done
  for i in $(seq 75); do pgrep -f 'container cleanup' >/dev/null || break; sleep 0.2; done
  for p in $(podman pod ps -q --filter label={POD_LABEL}); do
    err=$(timeout 60 podman pod rm -f -t 0 "$p" 2>&1 >/dev/null) && continue
    timeout 30 podman pod kill "$p" >/dev/null 2>&1
    for c in $(podman ps -aq --filter pod="$p"); do timeout 30 podman rm -f -t 0 --depend "$c" >/dev/null 2>&1; done
    err=$(timeout 60 podman pod rm -f -t 0 "$p" 2>&1 >/dev/null) && continue
    name=$(timeout 10 podman pod inspect --format '{{{{.Name}}}}' "$p" 2>/dev/null || echo "$p")
    err=${{err:-podman pod rm did not answer within 60 s}}
    echo "{FAILED_MARK} podman pod $name: $(echo "$err" | tail -n 1 | cut -c1-300)"
  done
  for c in $(podman ps -aq --filter label={POD_LABEL}); do
    err=$(timeout 60 podman rm -f -t 0 "$c" 2>&1 >/dev/null) && continue
    err=${{err:-podman rm did not answer within 60 s}}
    echo "{FAILED_MARK} podman container $c: $(echo "$err" | tail -n 1 | cut -c1-300)"
  done
  podman network rm -f podnet >/dev/null 2>&1
  [ "$socket_was" = active ] && systemctl start podman.socket >/dev/null 2>&1
fi
nft delete table {NFT_TABLE} 2>/dev/null
ip route flush proto {ROUTE_PROTO} 2>/dev/null
while iptables -w -t nat -D POSTROUTING -s {cidr} -d {cidr} -j RETURN 2>/dev/null; do :; done
rm -rf {paths}
rm -f {unit_files}
systemctl daemon-reload; systemctl reset-failed >/dev/null 2>&1
true
"""


CHECK_SCRIPT = f"""
for u in {' '.join(KFAB_UNITS)}; do systemctl cat "$u.service" >/dev/null 2>&1 && echo "unit $u"; done
for d in "$@"; do [ -e "$d" ] && echo "path $d"; done
nft list table {NFT_TABLE} >/dev/null 2>&1 && echo "nftables table {NFT_TABLE}"
[ -n "$(ip route show proto {ROUTE_PROTO})" ] && echo "routes proto {ROUTE_PROTO}"
command -v podman >/dev/null \\
  && podman pod ps --filter label={POD_LABEL} --format 'podman pod {{{{.Name}}}} ({{{{.Status}}}})'
true
"""


def host_settings(cluster: Cluster, host: str) -> dict:
    venv = str(cluster.var(host, "kfab_venv", "/opt/kfab/venv")).rstrip("/")
    return {
        "venv_root": venv.rsplit("/", 1)[0] if venv.endswith("/venv") else venv,
        "config_dir": str(cluster.var(host, "kfab_config_dir", "/etc/kfab")),
        "data_dir": str(cluster.var(host, "kfab_data_dir", "/var/lib/kfab")),
        "etcd_pki_dir": str(cluster.var(host, "etcd_pki_dir", "/etc/kfab-etcd")),
        "etcd_data_dir": str(cluster.var(host, "etcd_data_dir", "/var/lib/etcd/kfab")),
        "registry_dir": str(cluster.var(host, "registry_storage_dir", "/var/lib/docker-registry")),
        "cluster_cidr": str(cluster.var(host, "node_agent_cluster_cidr", "10.244.0.0/16")),
    }


def leftovers(cluster: Cluster, remote, settings: dict) -> list[str]:
    """What of kfab is still on the host (empty after a reset)."""
    paths = " ".join(q(settings[k]) for k in ("venv_root", "config_dir", "data_dir", "etcd_data_dir"))
    out = cluster.run(remote, f"bash -c {q(CHECK_SCRIPT)} check {paths}", "checking what is left").stdout
    return [line for line in out.splitlines() if line.strip()]


def reset(cluster: Cluster, hosts: list[str]) -> dict[str, list[str]]:
    settings = {h: host_settings(cluster, h) for h in hosts}
    remotes = {}
    try:
        for host in hosts:   # every host reachable before any is touched
            remotes[host] = cluster.connect(host)

        def one(host: str) -> list[str]:
            out = cluster.run(remotes[host], f"bash -c {q(reset_script(settings[host]))}", "removing kfab").stdout
            failed = [line.split(FAILED_MARK, 1)[1].strip() for line in out.splitlines() if FAILED_MARK in line]
            left = leftovers(cluster, remotes[host], settings[host])
            # Podman's reason beside the pod it could not remove; the check lists what is left either way.
            return failed + [item for item in left if not any(item.split(" (")[0] in f for f in failed)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            return dict(zip(hosts, pool.map(one, hosts)))
    finally:
        for remote in remotes.values():
            remote.close()


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise OpsError("refusing to reset without confirmation: stdin is not a terminal (pass --yes)")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run(args) -> int:
    try:
        cluster = Cluster(args.inventory, args.playbook)
        hosts = cluster.select(args.limit) if args.limit else list(cluster.inventory.hosts)
        if not args.yes and not confirm(f"Remove kfab from {', '.join(hosts)} ({cluster.inventory_path})? "
                                        f"The cluster's state on them (etcd/SQLite data) is deleted."):
            print("kfab reset: nothing changed", file=sys.stderr)
            return 1
        left = reset(cluster, hosts)
    except OpsError as exc:
        print(f"kfab reset: {exc}", file=sys.stderr)
        return 1
    failed = False
    for host, items in left.items():
        if items:
            failed = True
            print(f"{host}: still there: {', '.join(items)}")
        else:
            print(f"{host}: kfab removed")
    return 2 if failed else 0
