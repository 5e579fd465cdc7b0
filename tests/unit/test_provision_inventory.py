"""Inventory loading and variable precedence, as Ansible users expect them."""

from __future__ import annotations

import textwrap

import pytest

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


INVENTORY = """\
    all:
      vars:
        level: inventory-all
        ansible_user: admin
      hosts:
        lonely:
      children:
        control_plane:
          hosts:
            cp1: {ansible_host: 10.0.0.1, level: inventory-host}
          vars: {level: inventory-cp}
        workers:
          vars: {level: inventory-workers}
          hosts:
            w1: {ansible_host: 10.0.0.2, ansible_port: 2222}
            w2:
          children:
            gpu:
              vars: {level: inventory-gpu}
              hosts:
                w2:
    """


def test_hosts_groups_and_connection_vars(tmp_path):
    inv = load_inventory(write(tmp_path / "inv.yml", INVENTORY))
    assert list(inv.hosts) == ["lonely", "cp1", "w1", "w2"]
    assert inv.hosts["w2"].groups == ["all", "workers", "gpu"]
    assert inv.hosts["cp1"].address == "10.0.0.1"
    assert inv.hosts["w1"].port == 2222
    assert inv.hosts["w1"].user == "admin"
    assert inv.hosts["lonely"].address == "lonely"
    assert inv.group_hosts("workers") == ["w1", "w2"]


def test_child_group_vars_override_parent_and_host_vars_override_groups(tmp_path):
    inv = load_inventory(write(tmp_path / "inv.yml", INVENTORY))
    assert inv.hosts["lonely"].vars["level"] == "inventory-all"
    assert inv.hosts["w1"].vars["level"] == "inventory-workers"
    assert inv.hosts["w2"].vars["level"] == "inventory-gpu"
    assert inv.hosts["cp1"].vars["level"] == "inventory-host"


def test_group_vars_and_host_vars_files_in_ansible_order(tmp_path):
    inv_file = write(tmp_path / "inv.yml", INVENTORY)
    write(tmp_path / "group_vars" / "all.yml", "level: gv-all\nonly_all: 1\n")
    write(tmp_path / "group_vars" / "workers.yml", "level: gv-workers\n")
    write(tmp_path / "group_vars" / "gpu" / "a.yml", "level: gv-gpu\n")
    write(tmp_path / "host_vars" / "w1.yaml", "level: hv-w1\n")
    inv = load_inventory(inv_file)
    # group_vars/all beats the inventory file's group vars (Ansible's documented order) ...
    assert inv.hosts["lonely"].vars["level"] == "gv-all"
    # ... children's group_vars beat parents', host_vars beat everything from the inventory.
    assert inv.hosts["w2"].vars["level"] == "gv-gpu"
    assert inv.hosts["w1"].vars["level"] == "hv-w1"
    # inventory-file host vars beat group_vars files
    assert inv.hosts["cp1"].vars["level"] == "inventory-host"
    assert inv.hosts["cp1"].vars["only_all"] == 1
    assert inv.hosts["w1"].origin("level").endswith("host_vars/w1.yaml")


def test_host_patterns(tmp_path):
    inv = load_inventory(write(tmp_path / "inv.yml", INVENTORY))
    assert inv.select("workers") == ["w1", "w2"]
    assert inv.select("all:!workers") == ["lonely", "cp1"]
    assert inv.select("workers:&gpu") == ["w2"]
    assert inv.select("cp1,w2") == ["cp1", "w2"]
    assert inv.select("w*") == ["w1", "w2"]
    assert inv.select("nothing") == []


@pytest.mark.parametrize("text, message, line", [
    ("all:\n  hosts:\n    - h1\n", "'hosts' must be a mapping of host names", 2),
    ("all:\n  hostz:\n    h1:\n", "unknown key 'hostz'", 2),
    ("all:\n  hosts: {h1: }\n  vars: {}\n  chidlren: {}\n", "unknown key 'chidlren'", 4),
    ("all:\n  hosts:\n    h1: [1]\n", "host 'h1': variables must be a mapping", 3),
    ("all:\n  hosts:\n    h1: {a: 1]\n", "invalid YAML", 3),
    ("all:\n  vars: {ansible_port: http}\n  hosts: {h1: }\n", "ansible_port must be a port number", None),
    ("all:\n  children:\n    g: {}\n", "inventory lists no hosts", None),
    ("- h1\n", "inventory must be a mapping of groups", None),
    ("all:\n  hosts: {h1: }\n  hosts: {h2: }\n", "duplicate key 'hosts'", 3),
])
def test_bad_inventory_names_file_and_line(tmp_path, text, message, line):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ProvisionError) as err:
        load_inventory(path)
    assert message in str(err.value)
    assert str(err.value).startswith(str(path))
    if line:
        assert err.value.line == line


def test_bad_group_vars_file_is_named(tmp_path):
    inv_file = write(tmp_path / "inv.yml", INVENTORY)
    write(tmp_path / "group_vars" / "workers.yml", "- not\n- a mapping\n")
    with pytest.raises(ProvisionError) as err:
        load_inventory(inv_file)
    assert "group_vars/workers.yml" in str(err.value) and "must be a mapping" in str(err.value)


def test_group_cycle_is_refused(tmp_path):
    path = write(tmp_path / "inv.yml", """\
        all:
          children:
            a:
              hosts: {h1: }
              children:
                b:
                  children:
                    a:
        """)
    with pytest.raises(ProvisionError, match="its own ancestor"):
        load_inventory(path)


def test_committed_inventories_load():
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    inv = load_inventory(repo / "inventory" / "example-homelab.yml")
    assert inv.group_hosts("control_plane") and inv.group_hosts("workers")


# ---- INI, host ranges, directories (Ansible's formats) ----------------------------------------------

def test_host_ranges_expand_in_yaml_and_ini():
    from kfab.provision.inventory_ini import expand_hosts
    assert expand_hosts("node[01:04]") == ["node01", "node02", "node03", "node04"]
    assert expand_hosts("db-[a:c].lan") == ["db-a.lan", "db-b.lan", "db-c.lan"]
    assert expand_hosts("n[1:7:3]") == ["n1", "n4", "n7"]
    assert expand_hosts("r[1:2]x[a:b]") == ["r1xa", "r1xb", "r2xa", "r2xb"]


def test_ini_inventory_as_ansible_reads_it(tmp_path):
    (tmp_path / "hosts").write_text(textwrap.dedent("""\
        # comment
        bastion ansible_host=10.0.0.1
        [web]
        web[01:02].lan ansible_port=2222 role=frontend
        db1:2200 enabled=True
        [web:vars]
        http_port=8080
        [prod:children]
        web
        [prod:vars]
        env=prod
        """))
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("from_group_vars: yes\n")
    inv = load_inventory(tmp_path / "hosts")
    assert list(inv.hosts) == ["bastion", "web01.lan", "web02.lan", "db1"]
    web01 = inv.hosts["web01.lan"].vars
    assert web01["ansible_port"] == 2222 and web01["role"] == "frontend"
    assert web01["http_port"] == "8080" and web01["env"] == "prod" and web01["from_group_vars"] is True
    assert inv.hosts["db1"].vars["ansible_port"] == 2200 and inv.hosts["db1"].vars["enabled"] is True
    assert inv.select("prod") == ["web01.lan", "web02.lan", "db1"] and inv.select("ungrouped") == ["bastion"]


def test_ini_error_names_the_line(tmp_path):
    (tmp_path / "hosts").write_text("[web]\nh1\n[web:varz]\n")
    with pytest.raises(ProvisionError) as err:
        load_inventory(tmp_path / "hosts")
    assert err.value.line == 3 and "[web:varz]" in str(err.value)


def test_directory_inventory_merges_its_files(tmp_path):
    inv_dir = tmp_path / "inventory"
    (inv_dir / "group_vars").mkdir(parents=True)
    (inv_dir / "01-hosts.yml").write_text("all:\n  children:\n    workers:\n      hosts:\n        w[1:2]:\n")
    (inv_dir / "02-extra").write_text("[workers]\nw3\n[cp]\ncp1\n")
    (inv_dir / "group_vars" / "workers.yml").write_text("kind: worker\n")
    (inv_dir / "notes.md").write_text("not an inventory\n")
    inv = load_inventory(inv_dir)
    assert inv.select("workers") == ["w1", "w2", "w3"] and inv.select("cp") == ["cp1"]
    assert inv.hosts["w3"].vars["kind"] == "worker" and inv.base == inv_dir
