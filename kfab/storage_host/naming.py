"""Names of what the provisioners make for a claim, all derived from the claim and its volume's name
(`pvc-<claim uid>`, kfab.controllers.pv_binder.volume_name_for), so a rerun finds what an earlier run made.

- NFS: a subdirectory `<namespace>-<claim>-<pv name>` of the dynamic export root (the pattern of
  kubernetes-sigs/nfs-subdir-external-provisioner: an administrator sees whose data a directory holds).
- iSCSI: one target per volume, IQN `<iqn base>:<pv name>`, LUN 1 (tgt's LUN 0 is its controller), backed
  by the file `<lun dir>/<pv name>.img`.
"""

from __future__ import annotations

import re

# RFC 3720 iqn names: "iqn." yyyy-mm "." reversed domain [":" unique]; lowercase.
IQN_RE = re.compile(r"^iqn\.\d{4}-\d{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:-]+)?$")
VOLUME_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
LUN = 1


class NamingError(ValueError):
    pass


def _check_volume_name(pv_name: str) -> str:
    # Names reach paths and tgtadm arguments: only what a Kubernetes object name may be.
    if not VOLUME_NAME_RE.match(pv_name or "") or len(pv_name) > 253:
        raise NamingError(f"volume name {pv_name!r} is not a valid object name")
    return pv_name


def nfs_directory(claim: dict, pv_name: str) -> str:
    meta = claim["metadata"]
    return f"{meta['namespace']}-{meta['name']}-{_check_volume_name(pv_name)}"


def check_iqn(iqn: str, what: str = "IQN") -> str:
    if not IQN_RE.match(iqn or ""):
        raise NamingError(f"{what} {iqn!r} is not an iqn name (iqn.YYYY-MM.reversed.domain[:name], lowercase)")
    return iqn


def target_iqn(iqn_base: str, pv_name: str) -> str:
    return check_iqn(f"{iqn_base}:{_check_volume_name(pv_name)}")


def lun_file(lun_dir: str, pv_name: str) -> str:
    return f"{lun_dir.rstrip('/')}/{_check_volume_name(pv_name)}.img"
