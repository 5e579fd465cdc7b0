"""Variables encrypted by ansible-vault (ansible-core's own CLI, a test-only dependency, encrypts them here):
a whole group_vars file and a `!vault` string are decrypted with --vault-password-file; without the
password, or with a wrong one, the error names the file (and line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kfab.cli import main
from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory
from kfab.provision.vault import Vault

ANSIBLE_VAULT = str(Path(sys.executable).parent / "ansible-vault")


def ansible_vault(tmp_path: Path, *args: str) -> str:
    """ansible-core's own `ansible-vault ARGS` (its state under tmp_path); what it printed."""
    return subprocess.run([ANSIBLE_VAULT, *args], check=True, capture_output=True, text=True,
                          env={"ANSIBLE_HOME": str(tmp_path / "ah"), "PATH": "/usr/bin:/bin"}).stdout


def vaulted_inventory(tmp_path: Path, group_vars: str = "db_password: hunter2\nport: 5432\n",
                      name: str = "api_token", value: str = "t0k en") -> Path:
    """inv.yml with host h1 (local) and a `!vault` string `name`, beside an encrypted group_vars/all.yml;
    the password is in tmp_path/vault-pass."""
    password = tmp_path / "vault-pass"
    password.write_text("correct horse\n")
    (tmp_path / "group_vars").mkdir()
    secret = tmp_path / "group_vars" / "all.yml"
    secret.write_text(group_vars)
    ansible_vault(tmp_path, "encrypt", "--vault-password-file", str(password), str(secret))
    token = ansible_vault(tmp_path, "encrypt_string", "--vault-password-file", str(password), value,
                          "--name", name)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1:\n      ansible_connection: local\n      "
                         + token.strip().replace("\n", "\n      ") + "\n")
    assert secret.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    return inventory


def test_vault_file_and_string_are_decrypted(tmp_path):
    inventory = vaulted_inventory(tmp_path)
    inv = load_inventory(inventory, Vault.from_files([str(tmp_path / "vault-pass")]))
    variables = inv.hosts["h1"].vars
    assert variables["db_password"] == "hunter2" and variables["port"] == 5432
    assert variables["api_token"] == "t0k en"


def test_vault_without_or_with_a_wrong_password(tmp_path):
    inventory = vaulted_inventory(tmp_path)
    with pytest.raises(ProvisionError) as err:
        load_inventory(inventory)
    assert "--vault-password-file" in str(err.value) and err.value.line == 5   # the encrypted text
    (tmp_path / "wrong").write_text("nope\n")
    with pytest.raises(ProvisionError) as err:
        load_inventory(inventory, Vault.from_files([str(tmp_path / "wrong")]))
    assert "Decryption failed" in str(err.value) and err.value.file == str(inventory)


def test_kfab_up_uses_vaulted_variables(tmp_path, monkeypatch, capsys):
    inventory = vaulted_inventory(tmp_path)
    role = tmp_path / "roles" / "r" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(
        f"- copy: {{content: '{{{{ db_password }}}}', dest: '{tmp_path}/out', mode: '0600'}}\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [r]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["up", "-i", str(inventory), "--vault-password-file", str(tmp_path / "vault-pass")]) == 0
    assert (tmp_path / "out").read_text() == "hunter2"
    assert main(["up", "-i", str(inventory)]) == 1
    assert "encrypted with ansible-vault" in capsys.readouterr().err
