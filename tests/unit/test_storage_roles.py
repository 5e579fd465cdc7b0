"""Roles nfs-server, iscsi-target, storage-provisioner rendered for an inventory (no hosts needed): exports and
ACLs hold only the cluster's nodes; a missing CHAP secret is an error naming the variable before any
connection; site.yml's storage plays pass the same checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from kfab.provision.context import RunVars
from kfab.provision.inventory import load_inventory
from kfab.provision.playbook import load_playbook
from kfab.provision.preflight import preflight
from kfab.provision.runner import RoleFiles
from kfab.storage_host.config import parse_config

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "storage-servers.yml"

INVENTORY = {"all": {
    "vars": {"iscsi_target_chap_user": "kfab", "iscsi_target_chap_password": "twelve-chars",
             "storage_provisioner_kubeconfig": "/etc/hosts"},
    "children": {
        "control_plane": {"hosts": {"cp1": {"ansible_host": "10.0.0.10"}}},
        "nfs_server": {"hosts": {"st1": {"ansible_host": "10.0.0.5"}}},
        "iscsi_target": {"hosts": {"st1": {"iscsi_target_volumes": [{"name": "db", "size_mib": 64}]}}},
        "workers": {"hosts": {"w1": {"ansible_host": "10.0.0.11"}, "w2": {"ansible_host": "10.0.0.12"}}}}}}


def inventory(tmp_path, data=None):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data or INVENTORY))
    return load_inventory(path)


def render(inv, play_index: int, role: str, template: str, host="st1", extra=None) -> str:
    play = load_playbook(PLAYBOOK)[play_index]
    ref = next(r for r in play.roles if r.role.name == role)
    variables = RunVars(inv, extra or {}).host_vars(host, play, ref)
    return RoleFiles(ref.role, variables).render_template(template)


def test_nfs_exports_list_the_nodes_only(tmp_path):
    exports = render(inventory(tmp_path), 0, "nfs-server", "kfab.exports.j2")
    opts = "(rw,sync,no_subtree_check,no_root_squash)"
    assert f"/srv/kfab-nfs/static 10.0.0.11{opts} 10.0.0.12{opts} 10.0.0.10{opts}" in exports
    assert f"/srv/kfab-nfs/dynamic 10.0.0.11{opts}" in exports
    assert "10.0.0.5" not in exports


def test_ganesha_exports_have_a_pseudo_path_and_given_clients(tmp_path):
    conf = render(inventory(tmp_path), 0, "nfs-server", "ganesha.conf.j2",
                  extra={"nfs_server_clients": ["10.0.0.0/24"], "nfs_server_base_dir": "/data"})
    assert 'Path = "/data/dynamic";' in conf and 'Pseudo = "/data/dynamic";' in conf
    assert conf.count("Clients = 10.0.0.0/24;") == 2 and "Access_Type = None;" in conf


def test_iscsi_static_targets_have_chap_and_the_nodes_acl(tmp_path):
    conf = render(inventory(tmp_path), 1, "iscsi-target", "kfab-static.conf.j2")
    assert conf.split("\n", 1)[1] == (
        "<target iqn.2024-01.io.kfab:db>\n    backing-store /srv/kfab-iscsi/db.img\n"
        "    incominguser kfab twelve-chars\n    initiator-address 10.0.0.11\n    initiator-address 10.0.0.12\n"
        "    initiator-address 10.0.0.10\n</target>\n")


def test_provisioner_settings_are_what_kfab_provisioner_reads(tmp_path):
    inv = inventory(tmp_path)
    nfs = parse_config("nfs", yaml.safe_load(render(inv, 0, "storage-provisioner", "provisioner-nfs.yml.j2",
                                                     extra={"storage_provisioner_kind": "nfs"})))
    assert (nfs.server, nfs.root, nfs.default_class) == ("10.0.0.5", "/srv/kfab-nfs/dynamic", True)
    iscsi = parse_config("iscsi", yaml.safe_load(render(inv, 1, "storage-provisioner", "provisioner-iscsi.yml.j2",
                                                         extra={"storage_provisioner_kind": "iscsi"})))
    assert (iscsi.portal, iscsi.initiators, iscsi.chap_password, iscsi.default_class) == (
        "10.0.0.5:3260", ["10.0.0.11", "10.0.0.12", "10.0.0.10"], "twelve-chars", False)


def test_missing_chap_secret_is_named_before_any_connection(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(INVENTORY))
    del data["all"]["vars"]["iscsi_target_chap_password"]
    inv = inventory(tmp_path, data)
    errors = [str(e) for e in preflight(inv, load_playbook(PLAYBOOK), {}, inv.select("all"))]
    assert any("host st1" in e and "iscsi_target_chap_password is not set" in e for e in errors), errors


def test_exports_without_any_client_are_refused(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(INVENTORY))
    del data["all"]["children"]["workers"], data["all"]["children"]["control_plane"]
    inv = inventory(tmp_path, data)
    errors = [str(e) for e in preflight(inv, load_playbook(PLAYBOOK), {}, inv.select("all"))]
    assert any("nfs_server_clients is empty" in e for e in errors), errors
    assert any("iscsi_target_initiators is empty" in e for e in errors), errors


def test_site_storage_plays_pass_preflight(tmp_path):
    inv = inventory(tmp_path)
    plays = [p for p in load_playbook(REPO / "site.yml") if p.hosts in ("nfs_server", "iscsi_target")]
    assert len(plays) == 2
    assert preflight(inv, plays, {}, inv.select("all")) == []
