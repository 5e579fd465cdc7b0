"""The provisioner's settings file (errors name the file and key), tgt's target listing, and the target
config files the iSCSI provisioner writes."""

from __future__ import annotations

import pytest

from kfab.storage_host.config import ConfigError, load_config, parse_config
from kfab.storage_host.tgt import Tgt, parse_accounts, parse_targets, render_target_conf

ISCSI = {"portal": "10.95.0.11:3260", "iqn_base": "iqn.2024-01.io.kfab", "lun_dir": "/srv/kfab-iscsi",
         "initiators": ["10.95.0.12", "10.95.0.0/24"], "chap_user": "kfab", "chap_password": "twelve-chars"}

SHOW = """\
Target 1: iqn.2024-01.io.kfab:static1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-ls alias: none
            Connection: 0
                IP Address: 10.95.0.12
    LUN information:
        LUN: 0
            Type: controller
            Size: 0 MB, Block size: 1
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 17 MB, Block size: 512
            Backing store path: /srv/kfab-iscsi/static1.img
    Account information:
        kfab
    ACL information:
        10.95.0.12
Target 2: iqn.2024-01.io.kfab:pvc-1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Size: 0 MB, Block size: 1
    Account information:
    ACL information:
"""


def test_nfs_settings_and_defaults():
    cfg = parse_config("nfs", {"server": "10.95.0.11", "root": "/srv/kfab-nfs/dynamic", "default_class": True})
    assert (cfg.provisioner, cfg.storage_class, cfg.reclaim_policy, cfg.export_path, cfg.default_class) == (
        "kfab.io/nfs", "kfab-nfs", "Delete", "/srv/kfab-nfs/dynamic", True)


def test_iscsi_settings_and_defaults():
    cfg = parse_config("iscsi", ISCSI)
    assert (cfg.provisioner, cfg.storage_class, cfg.fs_type, cfg.secret_name) == (
        "kfab.io/iscsi", "kfab-iscsi", "ext4", "kfab-iscsi-chap")


@pytest.mark.parametrize("kind, change, message", [
    ("nfs", {"server": ""}, "server: required"),
    ("nfs", {"root": "srv"}, "root: must be an absolute path"),
    ("nfs", {"reclaim_policy": "Recycle"}, "reclaim_policy: must be one of Delete, Retain"),
    ("nfs", {"mount_options": "vers=4"}, "mount_options: must be a list of strings"),
    ("nfs", {"default_class": "yes"}, "default_class: must be true or false"),
    ("nfs", {"servr": "x"}, "servr: unknown setting"),
    ("iscsi", {"chap_password": None}, "chap_password: must be a string"),
    ("iscsi", {"chap_password": ""}, "chap_password: required"),
    ("iscsi", {"chap_password": "short"}, "chap_password: must be at least 12 characters"),
    ("iscsi", {"initiators": []}, "initiators: required: the node addresses allowed to log in"),
    ("iscsi", {"initiators": ["10.95.0.300"]}, "initiators: '10.95.0.300' is not an address or CIDR"),
    ("iscsi", {"iqn_base": "kfab"}, "iqn_base: iqn_base 'kfab' is not an iqn name"),
])
def test_bad_settings_name_the_file_and_key(kind, change, message):
    base = {"server": "10.95.0.11", "root": "/srv/x"} if kind == "nfs" else dict(ISCSI)
    with pytest.raises(ConfigError, match=f"^/etc/kfab/p.yml: {message}"):
        parse_config(kind, {**base, **change}, "/etc/kfab/p.yml")


def test_unreadable_or_non_yaml_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.yml: cannot read"):
        load_config("nfs", tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yml: not YAML"):
        load_config("nfs", bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yml: must be a mapping"):
        load_config("nfs", bad)


def test_tgt_listing_is_parsed():
    targets = parse_targets(SHOW)
    static = targets["iqn.2024-01.io.kfab:static1"]
    assert (static.tid, static.sessions, static.luns, static.accounts, static.acl) == (
        1, 1, {0: 0, 1: 17_000_000}, ["kfab"], ["10.95.0.12"])
    bare = targets["iqn.2024-01.io.kfab:pvc-1"]
    assert (bare.tid, bare.sessions, bare.luns, bare.accounts, bare.acl) == (2, 0, {0: 0}, [], [])
    assert parse_accounts("Account list:\n    kfab\n    other\n") == ["kfab", "other"]


def test_target_config_file_names_lun_chap_and_acl():
    assert render_target_conf("iqn.2024-01.io.kfab:pvc-1", "/srv/kfab-iscsi/pvc-1.img", "kfab", "twelve-chars",
                              ["10.95.0.12", "10.95.0.13"]).splitlines()[1:] == [
        "<target iqn.2024-01.io.kfab:pvc-1>", "    backing-store /srv/kfab-iscsi/pvc-1.img",
        "    incominguser kfab twelve-chars", "    initiator-address 10.95.0.12", "    initiator-address 10.95.0.13",
        "</target>"]


class Tgtadm:
    """tgtadm's answers as facts (pyinfra-style): `show` returns the listing given; other calls are recorded."""

    def __init__(self, targets: str, accounts: str):
        self.targets, self.accounts, self.calls = targets, accounts, []

    def __call__(self, argv):
        if argv[-2:] == ["--op", "show"]:
            return self.accounts if "account" in argv else self.targets
        self.calls.append(" ".join(argv[3:]))   # after "tgtadm --lld iscsi"
        return ""


def test_a_complete_target_is_left_alone_and_its_file_written_once(tmp_path):
    adm = Tgtadm(SHOW, "Account list:\n    kfab\n")
    tgt = Tgt(str(tmp_path), adm)
    tgt.ensure_target("static1", "iqn.2024-01.io.kfab:static1", "/srv/kfab-iscsi/static1.img", "kfab", "twelve-chars",
                      ["10.95.0.12"])
    assert adm.calls == []
    conf = tmp_path / "kfab-static1.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"   # it holds the CHAP secret


def test_a_half_made_target_gets_only_what_it_lacks(tmp_path):
    adm = Tgtadm(SHOW, "Account list:\n    kfab\n")
    Tgt(str(tmp_path), adm).ensure_target("pvc-1", "iqn.2024-01.io.kfab:pvc-1", "/srv/l/pvc-1.img", "kfab",
                                          "twelve-chars", ["10.95.0.12"])
    assert adm.calls == [
        "--mode logicalunit --op new --tid 2 --lun 1 --backing-store /srv/l/pvc-1.img",
        "--mode account --op bind --tid 2 --user kfab",
        "--mode target --op bind --tid 2 --initiator-address 10.95.0.12"]


def test_a_target_in_use_is_not_deleted(tmp_path):
    from kfab.storage_host.tgt import TgtError
    with pytest.raises(TgtError, match="still has 1 session"):
        Tgt(str(tmp_path), Tgtadm(SHOW, "")).delete_target("static1", "iqn.2024-01.io.kfab:static1")
