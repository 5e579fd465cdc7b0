"""The provisioner's configuration file (YAML, written by roles/storage-provisioner; mode 0600: it may hold
CHAP credentials). Every key is checked up front; a bad file is an error naming the file and the key.

Keys for both kinds:
  provisioner      the StorageClass `provisioner` this one serves      (kfab.io/nfs | kfab.io/iscsi)
  storage_class    the class it makes sure exists                      (kfab-nfs | kfab-iscsi)
  default_class    whether that class is the cluster's default         (false)
  reclaim_policy   reclaimPolicy of that class: Delete | Retain        (Delete)
nfs:
  server           address clients mount from (PV spec.nfs.server)     required
  root             local directory of dynamic volumes                  required
  export_path      that directory as clients name it                   (= root; ganesha's Pseudo = Path)
  mount_options    the class's mountOptions                            ([])
iscsi:
  portal           targetPortal of the PVs, host[:port]                required
  iqn_base         IQNs are <iqn_base>:<pv name>                       required
  lun_dir          local directory of the LUNs' backing files          required
  initiators       addresses/CIDRs allowed to log in (the ACL)         required, not empty
  chap_user, chap_password   session CHAP of every target              required
  fs_type          PV spec.iscsi.fsType                                (ext4)
  secret_name      Secret (type kubernetes.io/iscsi-chap) put in each claim's namespace  (kfab-iscsi-chap)
  conf_dir         tgt config directory for targets to survive a restart (/etc/tgt/conf.d)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kfab.storage_host.naming import NamingError, check_iqn

KINDS = {"nfs": ("kfab.io/nfs", "kfab-nfs"), "iscsi": ("kfab.io/iscsi", "kfab-iscsi")}
RECLAIM_POLICIES = ("Delete", "Retain")


class ConfigError(ValueError):
    pass


@dataclass
class ProvisionerConfig:
    kind: str
    provisioner: str
    storage_class: str
    default_class: bool = False
    reclaim_policy: str = "Delete"
    # nfs
    server: str = ""
    root: str = ""
    export_path: str = ""
    mount_options: list = field(default_factory=list)
    # iscsi
    portal: str = ""
    iqn_base: str = ""
    lun_dir: str = ""
    initiators: list = field(default_factory=list)
    chap_user: str = ""
    chap_password: str = ""
    fs_type: str = "ext4"
    secret_name: str = "kfab-iscsi-chap"
    conf_dir: str = "/etc/tgt/conf.d"


def parse_config(kind: str, data: object, source: str = "config") -> ProvisionerConfig:
    def fail(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    if kind not in KINDS:
        raise ConfigError(f"unknown provisioner kind {kind!r} (nfs or iscsi)")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping of settings")
    known = set(ProvisionerConfig.__dataclass_fields__) - {"kind"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise fail(unknown[0], "unknown setting")
    provisioner, storage_class = KINDS[kind]
    cfg = ProvisionerConfig(kind=kind, provisioner=provisioner, storage_class=storage_class)
    for key, value in data.items():
        default = getattr(cfg, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise fail(key, "must be true or false")
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise fail(key, "must be a list of strings")
        elif not isinstance(value, str):
            raise fail(key, "must be a string")
        setattr(cfg, key, value)
    if cfg.reclaim_policy not in RECLAIM_POLICIES:
        raise fail("reclaim_policy", f"must be one of {', '.join(RECLAIM_POLICIES)}")
    required = ("server", "root") if kind == "nfs" else ("portal", "iqn_base", "lun_dir", "chap_user",
                                                          "chap_password")
    for key in required:
        if not getattr(cfg, key):
            raise fail(key, "required")
    if kind == "nfs":
        if not cfg.root.startswith("/"):
            raise fail("root", "must be an absolute path")
        cfg.export_path = cfg.export_path or cfg.root
    else:
        try:
            check_iqn(cfg.iqn_base, "iqn_base")
        except NamingError as e:
            raise fail("iqn_base", str(e)) from None
        if not cfg.initiators:
            raise fail("initiators", "required: the node addresses allowed to log in")
        for address in cfg.initiators:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise fail("initiators", f"{address!r} is not an address or CIDR") from None
        # tgt's CHAP secrets: 12-16 characters for Microsoft initiators, at least 12 by RFC 3720 advice.
        if len(cfg.chap_password) < 12:
            raise fail("chap_password", "must be at least 12 characters (RFC 3720)")
    return cfg


def load_config(kind: str, path: Path) -> ProvisionerConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not YAML: {e}") from None
    return parse_config(kind, data, str(path))
