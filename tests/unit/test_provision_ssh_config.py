"""~/.ssh/config is honoured as OpenSSH (and so Ansible) honours it: HostName, User, Port, IdentityFile and
ProxyJump for the host's address, and whatever the inventory sets explicitly wins."""

from __future__ import annotations

import textwrap

from kfab.provision.ssh import Target, with_ssh_config


def config(tmp_path, text: str) -> str:
    path = tmp_path / "ssh_config"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_ssh_config_fills_what_the_inventory_leaves_open(tmp_path):
    key = tmp_path / "id_lab"
    key.write_text("key")
    cfg = config(tmp_path, f"""\
        Host node*
          HostName 10.9.0.%h
          User admin
          Port 2200
          IdentityFile {tmp_path}/missing
          IdentityFile {key}
        Host bastion
          HostName 203.0.113.7
          User jumper
        Host inner
          ProxyJump bastion,relay:2022
        """)
    t = with_ssh_config(Target(name="node1", address="node1"), cfg, explicit=set())
    assert (t.address, t.user, t.port, t.key_file, t.jump) == ("10.9.0.node1", "admin", 2200, str(key), None)
    explicit = with_ssh_config(Target(name="node1", address="node1", user="root", port=22), cfg, {"user", "port"})
    assert (explicit.user, explicit.port) == ("root", 22)
    inner = with_ssh_config(Target(name="inner", address="inner", user="ops"), cfg, {"user"})
    assert (inner.jump.address, inner.jump.port, inner.jump.user) == ("relay", 2022, "ops")
    assert (inner.jump.jump.address, inner.jump.jump.user) == ("203.0.113.7", "jumper")


def test_no_config_file_changes_nothing(tmp_path):
    target = Target(name="h", address="10.0.0.1", user="root")
    assert with_ssh_config(target, str(tmp_path / "absent"), set()) == target
