"""What one host must offer for the roles the plays give it: the ports its services will listen on, the data
paths they will fill, the kernel features they use, the other hosts it must reach — each with the inventory
variable that moves it, so a finding can name the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Inventory
from kfab.provision.playbook import Play
from kfab.provision.variables import HostVars


@dataclass(frozen=True)
class Port:
    port: int
    proto: str            # tcp | udp
    service: str          # who will listen: "kfab API server"
    variable: str         # the inventory variable that moves it
    owners: tuple         # process names (comm or command line words) that mean kfab's own service already runs
    address: str = ""     # the address it binds ("" or 0.0.0.0: every address)


@dataclass(frozen=True)
class DataPath:
    path: str
    what: str
    variable: str         # "" when no variable moves it
    # Volume storage (NFS exports, iSCSI LUN files) needs what the users' claims need, and a small dedicated
    # filesystem is a valid choice: short of space it is a warning, never a reason to stop `kfab up`.
    fatal_when_short: bool = True


@dataclass
class HostNeeds:
    host: str
    address: str
    roles: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    ports: list[Port] = field(default_factory=list)
    paths: list[DataPath] = field(default_factory=list)
    features: list[str] = field(default_factory=list)   # names of checks.FEATURES
    peers: list[dict] = field(default_factory=list)     # {"name", "address", "port"} of every other host
    vars: HostVars | None = None

    def questions(self) -> dict:
        """What hostprobe.py is asked on this host."""
        return {"ports": sorted({p.port for p in self.ports}), "paths": [p.path for p in self.paths],
                "peers": self.peers, "address": self.address}


def roles_of(plays: list[Play], inventory: Inventory) -> dict[str, set[str]]:
    """host -> names of the roles (with their dependencies) the plays run on it."""
    found: dict[str, set[str]] = {h: set() for h in inventory.hosts}
    for play in plays:
        for host in inventory.select(play.hosts):
            found[host] |= {role.name for role in play.all_roles()}
    return found


def _get(v: HostVars, name: str, default):
    try:
        return v[name] if name in v else default
    except ProvisionError:
        return default


def host_needs(host: str, inventory: Inventory, roles: set[str], v: HostVars) -> HostNeeds:
    groups = {g for g in inventory.hosts[host].groups if g != "all"}
    address = str(_get(v, "ansible_host", host))
    needs = HostNeeds(host, address, roles, groups, vars=v)
    needs.paths.append(DataPath("/", "the root filesystem (packages, kfab's virtualenv)", ""))
    needs.paths.append(DataPath(str(_get(v, "kfab_data_dir", "/var/lib/kfab")), "kfab's data", "kfab_data_dir"))
    if "control-plane" in roles and "control_plane" in groups:
        needs.ports.append(Port(int(_get(v, "kfab_apiserver_port", 6443)), "tcp", "the kfab API server",
                                "kfab_apiserver_port", ("kfab",), str(_get(v, "control_plane_bind", ""))))
    if "state-store" in roles:
        if str(_get(v, "state_store_backend", "sqlite")) == "etcd" and "etcd" in groups:
            needs.ports.append(Port(int(_get(v, "etcd_client_port", 2379)), "tcp", "etcd (clients)",
                                    "etcd_client_port", ("etcd",)))
            needs.ports.append(Port(int(_get(v, "etcd_peer_port", 2380)), "tcp", "etcd (peers)",
                                    "etcd_peer_port", ("etcd",)))
            needs.paths.append(DataPath(str(_get(v, "etcd_data_dir", "/var/lib/etcd/kfab")), "etcd's data",
                                        "etcd_data_dir"))
        elif "control_plane" in groups:
            needs.paths.append(DataPath(str(_get(v, "state_store_sqlite_dir", "/var/lib/kfab/state")),
                                        "the SQLite state store", "state_store_sqlite_dir"))
    if "registry" in roles and "registry" in groups:
        needs.ports.append(Port(int(_get(v, "kfab_registry_port", 5000)), "tcp", "the image registry",
                                "kfab_registry_port", ("docker-registry", "registry")))
        needs.paths.append(DataPath(str(_get(v, "registry_storage_dir", "/var/lib/docker-registry")),
                                    "the registry's images", "registry_storage_dir"))
    if "worker" in roles:
        needs.ports.append(Port(int(_get(v, "kfab_node_port", 10250)), "tcp", "the node agent (kubelet port)",
                                "kfab_node_port", ("kfab",)))
        if _get(v, "worker_ingress", True):
            for name, default in (("worker_ingress_http_port", 80), ("worker_ingress_https_port", 443)):
                needs.ports.append(Port(int(_get(v, name, default)), "tcp", "the ingress controller", name,
                                        ("kfab",)))
        needs.paths.append(DataPath("/var/lib/containers", "Podman's images and containers", ""))
        needs.features += ["cgroup", "overlay", "br_netfilter"]
        if _get(v, "worker_proxy", True):
            needs.features.append("nf_tables")
        if inventory.groups.get("nfs_server") and inventory.group_hosts("nfs_server"):
            needs.features.append("nfs")
        if inventory.groups.get("iscsi_target") and inventory.group_hosts("iscsi_target"):
            needs.features.append("iscsi_tcp")
    if "dns" in roles:
        dns_address = str(_get(v, "dns_listen_address", address))
        for proto in ("udp", "tcp"):
            needs.ports.append(Port(int(_get(v, "dns_port", 53)), proto, "cluster DNS", "dns_port", ("kfab",),
                                    dns_address))
    if "nfs-server" in roles:
        needs.ports.append(Port(2049, "tcp", "the NFS server", "", ("ganesha.nfsd", "nfsd")))
        needs.paths.append(DataPath(str(_get(v, "nfs_server_base_dir", "/srv/kfab-nfs")), "NFS exports",
                                    "nfs_server_base_dir", fatal_when_short=False))
        if str(_get(v, "nfs_server_backend", "auto")) == "kernel":
            needs.features.append("nfsd")
    if "iscsi-target" in roles:
        needs.ports.append(Port(int(_get(v, "iscsi_target_port", 3260)), "tcp", "the iSCSI target",
                                "iscsi_target_port", ("tgtd",)))
        needs.paths.append(DataPath(str(_get(v, "iscsi_target_lun_dir", "/srv/kfab-iscsi")), "iSCSI LUN files",
                                    "iscsi_target_lun_dir", fatal_when_short=False))
    if "package-cache" in roles:
        needs.ports.append(Port(int(_get(v, "package_cache_port", 3142)), "tcp", "the package cache",
                                "package_cache_port", ("apt-cacher-ng",)))
    return needs


def with_peers(needs: dict[str, HostNeeds]) -> None:
    """Each host is asked to resolve and reach every other host (its SSH port: open on every kfab host)."""
    for host, n in needs.items():
        n.peers = [{"name": other.host, "address": other.address, "port": int(_get(other.vars, "ansible_port", 22))}
                   for other in needs.values() if other.host != host]
