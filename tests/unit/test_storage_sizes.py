"""Provisioners' naming, size parsing and rounding, and access-mode checks (kfab/storage_host)."""

from __future__ import annotations

import pytest

from kfab.storage_host.access import ISCSI_MODES, NFS_MODES, ProvisioningError, check_access_modes
from kfab.storage_host.naming import NamingError, check_iqn, lun_file, nfs_directory, target_iqn
from kfab.storage_host.sizes import GI, MI, SizeError, format_bytes, lun_bytes, request_bytes, round_up

UID = "0e5d380a-a4cc-4218-ae6f-20f38d777340"
PV = f"pvc-{UID}"


def claim(size=None, modes=("ReadWriteOnce",), name="data", namespace="shop"):
    spec = {"accessModes": list(modes)}
    if size is not None:
        spec["resources"] = {"requests": {"storage": size}}
    return {"metadata": {"name": name, "namespace": namespace, "uid": UID}, "spec": spec}


@pytest.mark.parametrize("size, expected", [
    ("1Gi", GI), ("1G", 10**9), ("100Mi", 100 * MI), ("512Ki", 512 * 1024), ("1.5Gi", 3 * GI // 2),
    ("100M", 10**8), ("1", 1), ("2e3", 2000),
])
def test_claim_sizes_are_kubernetes_quantities(size, expected):
    assert request_bytes(claim(size)) == expected


@pytest.mark.parametrize("size, message", [
    (None, "has no spec.resources.requests.storage"), ("", "has no spec.resources.requests.storage"),
    ("lots", "'lots' is not a quantity"), ("0", "must be greater than zero"), ("-1Gi", "must be greater than zero"),
])
def test_bad_claim_sizes_are_named(size, message):
    with pytest.raises(SizeError, match=message):
        request_bytes(claim(size))


@pytest.mark.parametrize("requested, lun", [
    (GI, GI),                       # already whole MiB
    (10**9, 954 * MI),              # 1G = 953.67 MiB, rounded up
    (10**8, 96 * MI),               # 100M
    (8 * MI + 1, 9 * MI),
    (1, 8 * MI), (4 * MI, 8 * MI),  # never below the 8 MiB an ext4 with its journal needs
])
def test_luns_round_up_to_whole_mebibytes_with_a_minimum(requested, lun):
    assert lun_bytes(requested) == lun


def test_round_up_and_format():
    assert round_up(1, 4096) == 4096 and round_up(8192, 4096) == 8192 and round_up(0, MI, 3 * MI) == 3 * MI
    assert [format_bytes(n) for n in (GI, 96 * MI, 954 * MI, 2048 * GI, 3 * 1024, 1000)] == [
        "1Gi", "96Mi", "954Mi", "2Ti", "3Ki", "1000"]


def test_names_derive_from_the_claim_and_its_volume():
    assert nfs_directory(claim(), PV) == f"shop-data-{PV}"
    assert target_iqn("iqn.2024-01.io.kfab", PV) == f"iqn.2024-01.io.kfab:{PV}"
    assert lun_file("/srv/kfab-iscsi/", PV) == f"/srv/kfab-iscsi/{PV}.img"


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "UPPER", "x" * 254, "-lead"])
def test_names_that_could_escape_a_directory_are_refused(bad):
    with pytest.raises(NamingError, match="not a valid object name"):
        lun_file("/srv/kfab-iscsi", bad)
    with pytest.raises(NamingError):
        nfs_directory(claim(), bad)


@pytest.mark.parametrize("iqn", ["iqn.2024-01.io.kfab", "iqn.2001-04.com.example:storage.disk1"])
def test_iqn_names(iqn):
    assert check_iqn(iqn) == iqn


@pytest.mark.parametrize("iqn", ["iqn.24-01.io.kfab", "eui.02004567A425678D", "iqn.2024-01.IO.kfab", "kfab"])
def test_bad_iqns_are_refused(iqn):
    with pytest.raises(NamingError, match="is not an iqn name"):
        check_iqn(iqn, "iqn_base")


def test_nfs_serves_every_access_mode():
    modes = ["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"]
    assert check_access_modes(claim(modes=modes), NFS_MODES, "kfab.io/nfs") == modes


@pytest.mark.parametrize("modes, refused", [
    (["ReadWriteMany"], "ReadWriteMany"), (["ReadWriteOnce", "ReadOnlyMany"], "ReadOnlyMany"),
])
def test_iscsi_refuses_shared_modes_naming_them(modes, refused):
    with pytest.raises(ProvisioningError, match=f"kfab.io/iscsi does not support access mode {refused} "
                                                r"\(supported: ReadWriteOnce, ReadWriteOncePod\)"):
        check_access_modes(claim(modes=modes), ISCSI_MODES, "kfab.io/iscsi")


def test_a_claim_without_access_modes_is_refused():
    with pytest.raises(ProvisioningError, match="no spec.accessModes"):
        check_access_modes(claim(modes=()), NFS_MODES, "kfab.io/nfs")
