"""The lifecycle commands check their arguments, inventory and files first and refuse with a message naming
the inventory/host/node/file, changing nothing (no host is contacted: the inventories point at TEST-NET
addresses nothing answers on)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
import yaml

from kfab.cli import main
from kfab.client.kubeconfig import load_kubeconfig
from kfab.pki import ca as ca_mod

REPO = Path(__file__).resolve().parents[2]
SITE = str(REPO / "site.yml")


@pytest.fixture
def inventory(tmp_path):
    """A cluster inventory whose CA and admin pair exist on this machine (as after `kfab up`)."""
    pki = tmp_path / "clusters" / "opstest" / "pki"
    ca = ca_mod.new_ca()
    ca_mod.save(ca, pki / "ca.crt", pki / "ca.key")
    admin = ca_mod.issue(ca, "kubernetes-admin", ("system:masters",), client=True)
    ca_mod.save(admin, pki / "issued" / "admin.crt", pki / "issued" / "admin.key")
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"kfab_cluster_name": "opstest", "kfab_pki_dir": str(pki), "ansible_ssh_private_key_file": "",
                 "kfab_ssh_timeout": 1,
                 # a closed local port: "does not answer" comes at once
                 "control_plane_server_url": "https://127.0.0.1:9"},
        "children": {
            "control_plane": {"hosts": {"c1": {"ansible_host": "192.0.2.11"}}},
            "workers": {"hosts": {"w1": {"ansible_host": "192.0.2.12"}}},
            "spare": {"hosts": {"s1": {"ansible_host": "192.0.2.13"}}}}}}))
    return inv


def kfab(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ---- kubeconfig -i ---------------------------------------------------------------------------------------

def test_kubeconfig_merges_a_context_named_after_the_cluster_keeping_others(inventory, tmp_path, capsys,
                                                                             monkeypatch):
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": "https://other:6443"}}],
        "users": [{"name": "someone", "user": {"token": "t"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "someone"}}]}))
    monkeypatch.setenv("KUBECONFIG", f"{target}{os.pathsep}/nonexistent")
    for _ in range(2):   # a second run replaces its entries instead of adding more
        code, _, err = kfab(capsys, "kubeconfig", "-i", str(inventory), "--playbook", SITE)
        assert code == 0, err
    config = yaml.safe_load(target.read_text())
    assert [c["name"] for c in config["contexts"]] == ["other", "opstest"]
    assert [c["name"] for c in config["clusters"]] == ["other", "opstest"]
    assert config["current-context"] == "opstest"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    client = load_kubeconfig(target)
    assert client.server == "https://127.0.0.1:9" and client.user == "opstest-admin"
    assert "merged context opstest" in err and str(target) in err


def test_kubeconfig_output_file_is_private_and_usable(inventory, tmp_path, capsys):
    out = tmp_path / "admin.kubeconfig"
    code, _, err = kfab(capsys, "kubeconfig", "-i", str(inventory), "--playbook", SITE, "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_kubeconfig(out).server == "https://127.0.0.1:9"


def test_kubeconfig_before_kfab_up_says_so(inventory, tmp_path, capsys):
    (tmp_path / "clusters" / "opstest" / "pki" / "issued" / "admin.crt").unlink()
    code, _, err = kfab(capsys, "kubeconfig", "-i", str(inventory), "--playbook", SITE, "-o", str(tmp_path / "k"))
    assert code == 1
    assert "admin.crt is missing" in err and f"kfab up -i {inventory}" in err
    assert not (tmp_path / "k").exists()


def test_kubeconfig_refuses_to_merge_into_a_file_that_is_not_a_kubeconfig(inventory, tmp_path, capsys,
                                                                          monkeypatch):
    target = tmp_path / "config"
    target.write_text("clusters: not-a-list\n")
    monkeypatch.setenv("KUBECONFIG", str(target))
    code, _, err = kfab(capsys, "kubeconfig", "-i", str(inventory), "--playbook", SITE)
    assert code == 1 and str(target) in err and "nothing written" in err
    assert target.read_text() == "clusters: not-a-list\n"


def test_kubeconfig_with_inventory_and_data_dir_options_refused(inventory, capsys):
    code, _, err = kfab(capsys, "kubeconfig", "-i", str(inventory), "--playbook", SITE, "--user", "bob")
    assert code == 1 and "--user" in err


def test_missing_inventory_is_named(tmp_path, capsys):
    missing = tmp_path / "nope.yml"
    for args in (["kubeconfig", "-i", str(missing)], ["add-node", "-i", str(missing), "w1"],
                 ["remove-node", "-i", str(missing), "w1"], ["reset", "-i", str(missing), "--yes"],
                 ["upgrade", "-i", str(missing)], ["backup", "-i", str(missing)],
                 ["restore", "-i", str(missing), "x.db", "--yes"], ["rotate-certs", "-i", str(missing)],
                 ["drain", "-i", str(missing), "w1"], ["uncordon", "-i", str(missing), "w1"]):
        code, _, err = kfab(capsys, *args, "--playbook", SITE)
        assert code == 1, args
        assert str(missing) in err and "inventory file not found" in err, (args, err)


# ---- add-node / remove-node -------------------------------------------------------------------------------

def test_add_node_of_an_unknown_host_names_the_inventory_and_its_hosts(inventory, capsys):
    code, _, err = kfab(capsys, "add-node", "-i", str(inventory), "--playbook", SITE, "w9")
    assert code == 1
    assert f"{inventory}: no host 'w9'" in err and "c1, s1, w1" in err


def test_add_node_of_a_host_outside_group_workers_says_how_to_add_it(inventory, capsys):
    code, _, err = kfab(capsys, "add-node", "-i", str(inventory), "--playbook", SITE, "s1")
    assert code == 1
    assert f"{inventory}: host s1 is not in group 'workers'" in err and "workers: hosts:" in err


def test_commands_name_the_api_server_that_does_not_answer(inventory, capsys):
    for args in (["add-node", "-i", str(inventory), "w1"], ["remove-node", "-i", str(inventory), "w1"],
                 ["drain", "-i", str(inventory), "w1"], ["uncordon", "-i", str(inventory), "w1"]):
        code, _, err = kfab(capsys, *args, "--playbook", SITE)
        assert code == 1, args
        assert "the API server of cluster opstest at https://127.0.0.1:9 does not answer" in err, (args, err)


# ---- reset ------------------------------------------------------------------------------------------------

def test_reset_without_yes_and_without_a_terminal_refuses(inventory, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, _, err = kfab(capsys, "reset", "-i", str(inventory), "--playbook", SITE)
    assert code == 1 and "--yes" in err


def test_reset_limit_matching_no_host_is_refused(inventory, capsys):
    code, _, err = kfab(capsys, "reset", "-i", str(inventory), "--playbook", SITE, "--limit", "nothere", "--yes")
    assert code == 1 and "--limit 'nothere' matches no host" in err and str(inventory) in err


def test_reset_stops_at_an_unreachable_host_before_touching_any(inventory, capsys):
    code, _, err = kfab(capsys, "reset", "-i", str(inventory), "--playbook", SITE, "--yes")
    assert code == 1 and "host c1: unreachable" in err


# ---- upgrade / backup / restore / rotate-certs ------------------------------------------------------------

def test_upgrade_checks_the_wheelhouse(inventory, tmp_path, capsys):
    code, _, err = kfab(capsys, "upgrade", "-i", str(inventory), "--playbook", SITE,
                        "--wheelhouse", str(tmp_path / "none"))
    assert code == 1 and f"--wheelhouse {tmp_path / 'none'}: no such directory" in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "aiohttp-3.0-py3-none-any.whl").write_bytes(b"")
    code, _, err = kfab(capsys, "upgrade", "-i", str(inventory), "--playbook", SITE,
                        "--wheelhouse", str(tmp_path / "empty"))
    assert code == 1 and "holds no kfab wheel" in err


def test_backup_never_overwrites(inventory, tmp_path, capsys):
    existing = tmp_path / "b.db"
    existing.write_text("keep")
    code, _, err = kfab(capsys, "backup", "-i", str(inventory), "--playbook", SITE, "-o", str(existing))
    assert code == 1 and f"{existing} exists already" in err
    assert existing.read_text() == "keep"


def test_restore_checks_the_backup_file_first(inventory, tmp_path, capsys):
    code, _, err = kfab(capsys, "restore", "-i", str(inventory), "--playbook", SITE, str(tmp_path / "x.db"), "--yes")
    assert code == 1 and f"{tmp_path / 'x.db'}: no such backup file" in err
    bogus = tmp_path / "snapshot.db"
    bogus.write_bytes(b"not sqlite at all")
    code, _, err = kfab(capsys, "restore", "-i", str(inventory), "--playbook", SITE, str(bogus), "--yes")
    assert code == 1 and "is not a SQLite database" in err and "store is SQLite" in err


def test_rotate_certs_needs_the_cluster_ca(inventory, tmp_path, capsys):
    (tmp_path / "clusters" / "opstest" / "pki" / "ca.key").unlink()
    code, _, err = kfab(capsys, "rotate-certs", "-i", str(inventory), "--playbook", SITE)
    assert code == 1 and "no cluster CA" in err
    assert (tmp_path / "clusters" / "opstest" / "pki" / "issued" / "admin.crt").exists()
