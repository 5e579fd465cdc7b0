"""Lazy Jinja2 variables, precedence across roles/plays/extra vars, and -e parsing."""

from __future__ import annotations

import pytest

from kfab.provision.context import RunVars
from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Layer, load_inventory
from kfab.provision.playbook import Play, RoleRef
from kfab.provision.roles import Role
from kfab.provision.variables import HostVars, parse_extra_vars


def test_values_resolve_lazily_with_native_types():
    v = HostVars([Layer("defaults", {"port": 8080, "url": "http://{{ host }}:{{ port }}", "host": "a",
                                     "copy": "{{ port }}", "zeros": "007", "broken": "{{ missing }}",
                                     "items": ["{{ port }}", {"k": "{{ host }}"}]})])
    assert v["url"] == "http://a:8080"
    assert v["copy"] == 8080 and isinstance(v["copy"], int)
    assert v["zeros"] == "007"
    assert v["items"] == [8080, {"k": "a"}]
    # 'broken' is never used above: an undefined name in an unused value is not an error
    with pytest.raises(ProvisionError, match="variable 'broken': 'missing' is undefined"):
        v["broken"]


def test_later_layers_win_and_a_value_sees_the_winning_layer():
    v = HostVars([Layer("defaults", {"name": "d", "greeting": "hi {{ name }}"}), Layer("extra", {"name": "e"})])
    assert v["greeting"] == "hi e"


def test_self_reference_is_reported():
    v = HostVars([Layer("f.yml", {"a": "{{ b }}", "b": "{{ a }}"})])
    with pytest.raises(ProvisionError, match="refers to itself: a -> b -> a"):
        v["a"]


def test_precedence_role_defaults_inventory_play_extra(tmp_path):
    (tmp_path / "inv.yml").write_text("all:\n  vars: {x: inventory, y: inventory}\n  hosts: {h1: }\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("y: group_vars\nz: group_vars\n")
    inv = load_inventory(tmp_path / "inv.yml")

    role = Role("r", tmp_path, Layer("defaults", {"x": "default", "w": "default", "z": "default"}))
    ref = RoleRef(role)
    play = Play("p", "all", [ref], {"z": "play"}, False, [], "site.yml", 1)
    run = RunVars(inv, {"x": "extra"})
    v = run.host_vars("h1", play, ref)
    assert v["w"] == "default"
    assert v["y"] == "group_vars"
    assert v["z"] == "play"
    assert v["x"] == "extra"
    assert v["inventory_hostname"] == "h1"
    assert v["groups"]["all"] == ["h1"]
    assert v["hostvars"]["h1"]["y"] == "group_vars"


def test_extra_vars_forms(tmp_path):
    (tmp_path / "more.yml").write_text("a: 1\nb: [x]\n")
    assert parse_extra_vars(["k=v", "x='a b' y=2", "@more.yml", '{"j": true}'], tmp_path) == {
        "k": "v", "x": "a b", "y": "2", "a": 1, "b": ["x"], "j": True}
    with pytest.raises(ProvisionError, match="expected key=value"):
        parse_extra_vars(["novalue"])
    with pytest.raises(ProvisionError, match="must be a mapping"):
        (tmp_path / "list.yml").write_text("- 1\n")
        parse_extra_vars(["@list.yml"], tmp_path)


def test_a_value_keeps_its_trailing_newline():
    v = HostVars([Layer("d", {"name": "x", "line": "{{ name }}\n"})])
    assert v["line"] == "x\n"
