"""The provisioner's public API (kfab/provision/api.py): a site's host variables resolved as `kfab up` does,
the SSH target built from ansible_* variables, and the registry's port read from its role's defaults."""

from pathlib import Path

import pytest

from kfab.provision.api import ProvisionError, Site
from kfab.provision.ssh import target_from_vars
from kfab.registry.commands import registry_address

REPO = Path(__file__).resolve().parents[2]


def write_site(tmp_path: Path, inventory: str) -> tuple[Path, Path]:
    role = tmp_path / "roles" / "r"
    (role / "defaults").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "defaults" / "main.yml").write_text("port: 5000\nurl: 'http://{{ ansible_host }}:{{ port }}'\n")
    (role / "tasks" / "main.yml").write_text("- debug: {msg: hi}\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [r]\n")
    (tmp_path / "inv.yml").write_text(inventory)
    return tmp_path / "inv.yml", tmp_path / "site.yml"


def test_host_vars_are_role_defaults_below_the_inventory_and_extra_vars(tmp_path):
    inv, site_yml = write_site(tmp_path, "all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n"
                                         "    b: {ansible_host: 10.0.0.2, port: 6000}\n")
    site = Site(inv, site_yml)
    assert site.var("a", "url") == "http://10.0.0.1:5000"
    assert site.var("b", "url") == "http://10.0.0.2:6000"
    assert site.var("a", "missing", "fallback") == "fallback"
    assert Site(inv, site_yml, ["port=7000"]).var("b", "port") == "7000"   # k=v extra vars are strings, as in Ansible
    assert Site(inv, None).var("a", "port") is None     # no play file: no role defaults


def test_a_missing_play_file_is_a_provision_error(tmp_path):
    inv, _ = write_site(tmp_path, "all:\n  hosts:\n    a:\n")
    with pytest.raises(ProvisionError, match="play file not found"):
        Site(inv, tmp_path / "absent.yml")


def test_target_from_ansible_variables(tmp_path):
    target = target_from_vars("a", {"ansible_host": "10.0.0.1", "ansible_port": "2222", "ansible_user": "ops",
                                    "ansible_ssh_private_key_file": "keys/id", "kfab_ssh_config": "absent",
                                    "kfab_host_key_checking": "accept-new"}, tmp_path)
    assert (target.address, target.port, target.user) == ("10.0.0.1", 2222, "ops")
    assert target.key_file == str(tmp_path / "keys" / "id")
    assert target.host_key_checking == "accept-new" and target.timeout == 10.0
    with pytest.raises(ValueError):
        target_from_vars("a", {"ansible_port": "ssh"}, tmp_path)


def test_the_registry_port_comes_from_role_registry(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  children:\n    registry:\n      hosts:\n        r1: {ansible_host: 10.0.0.9}\n")
    assert registry_address(str(inv), str(REPO / "site.yml")) == ("10.0.0.9:5000", "r1:5000")
    inv.write_text("all:\n  vars: {kfab_registry_port: 5555}\n  children:\n    registry:\n      hosts:\n        r1:\n")
    assert registry_address(str(inv), str(REPO / "site.yml")) == ("r1:5555", "r1:5555")
