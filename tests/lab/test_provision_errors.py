"""Each way a run can go wrong gets one clear line, and invalid inputs run nothing on any host.

Every play file here starts with a task that would leave a marker file on the hosts: after a refused
run, no host has it."""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from pathlib import Path

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kfab.provision.ssh import fingerprint

REPO = Path(__file__).resolve().parents[2]


def kfab_up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kfab", "up", *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def marker():
    return f"/root/kfab-marker-{uuid.uuid4().hex[:8]}"


def project(tmp_path: Path, marker: str, tasks: str = "", templates: dict | None = None) -> Path:
    """A play file with one role whose first task writes `marker`, followed by `tasks`."""
    role = tmp_path / "roles" / "probe"
    (role / "tasks").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "tasks" / "main.yml").write_text(
        f"- name: leave a marker\n  file: {{path: {marker}, state: touch}}\n" + textwrap.dedent(tasks))
    for name, text in (templates or {}).items():
        (role / "templates" / name).write_text(text)
    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  roles: [probe]\n")
    return site


def assert_no_host_has(lab, marker):
    for name in lab.hosts:
        assert lab.ssh(name, f"test -e {marker}", check=False).returncode == 1, f"{name} ran the play"


def assert_one_error_line(result, *fragments):
    errors = [line for line in result.stderr.splitlines()
              if line.startswith("ERROR:") and "nothing was run" not in line]
    assert errors, result.stdout + result.stderr
    assert any(all(f in line for f in fragments) for line in errors), result.stderr
    assert result.returncode == 1
    assert "PLAY" not in result.stdout


def test_bad_inventory_is_refused_with_file_and_line(lab, tmp_path, marker):
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    kt1:\n      ansible_host: 10.79.0.11\n  childern:\n    x: {}\n")
    result = kfab_up("-i", str(bad), str(project(tmp_path, marker)))
    assert_one_error_line(result, f"{bad}:5", "unknown key 'childern'")
    assert_no_host_has(lab, marker)


def test_unknown_module_runs_nothing(lab, tmp_path, marker):
    site = project(tmp_path, marker, "- name: typo here\n  pakage: {name: curl}\n")
    result = kfab_up("-i", str(lab.inventory), str(site))
    assert_one_error_line(result, "roles/probe/tasks/main.yml:4", "task 'typo here'",
                          "couldn't resolve module/action 'pakage'")
    assert_no_host_has(lab, marker)


def test_template_syntax_error_runs_nothing(lab, tmp_path, marker):
    site = project(tmp_path, marker, "- name: render\n  template: {src: bad.j2, dest: /root/bad}\n",
                   templates={"bad.j2": "fine\n{{ unclosed \n"})
    result = kfab_up("-i", str(lab.inventory), str(site))
    assert_one_error_line(result, "roles/probe/templates/bad.j2:2", "template syntax error")
    assert_no_host_has(lab, marker)


def test_undefined_variable_runs_nothing_and_names_host_and_task(lab, tmp_path, marker):
    site = project(tmp_path, marker, "- name: render\n  template: {src: t.j2, dest: /root/t}\n",
                   templates={"t.j2": "host {{ inventory_hostname }}\nport {{ api_prot }}\n"})
    result = kfab_up("-i", str(lab.inventory), str(site))
    assert_one_error_line(result, "roles/probe/templates/t.j2:2", "host kt1", "task 'probe : render'",
                          "'api_prot' is undefined")
    assert_no_host_has(lab, marker)


def test_unreachable_host_is_reported_and_the_others_go_on(lab, tmp_path, marker):
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["children"]["workers"]["hosts"]["kt9"] = {"ansible_host": "10.79.0.99",
                                                              "kfab_ssh_timeout": 3}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump(inventory))
    result = kfab_up("-i", str(inv), str(project(tmp_path, marker)))
    assert result.returncode == 4, result.stdout + result.stderr
    assert "unreachable kt9: connect: cannot connect to 10.79.0.99:22" in result.stdout
    for name in lab.hosts:
        assert lab.ssh(name, f"test -e {marker} && rm {marker}", check=False).returncode == 0, name


def _known_fingerprints(lab, ip: str) -> set[str]:
    keys = paramiko.HostKeys(str(lab.known_hosts))
    return {fingerprint(k) for k in (keys.lookup(ip) or {}).values()}


def test_unknown_host_key_is_refused_naming_host_and_fingerprint(lab, tmp_path, marker):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt1", "-e", f"kfab_known_hosts_file={empty}",
                     "-e", "kfab_host_key_checking=strict", str(project(tmp_path, marker)))
    assert result.returncode == 4, result.stdout + result.stderr
    line = next(out for out in result.stdout.splitlines() if "unreachable kt1" in out)
    assert "unknown SSH host key" in line and "refused" in line
    assert any(fp in line for fp in _known_fingerprints(lab, lab.hosts["kt1"])), line
    assert empty.read_text() == ""
    assert_no_host_has(lab, marker)


def test_accept_new_records_an_unknown_key_but_a_changed_key_is_always_refused(lab, tmp_path, marker):
    first_use = tmp_path / "first_use"
    site = project(tmp_path, marker)
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt2", "-e", f"kfab_known_hosts_file={first_use}",
                     "-e", "kfab_host_key_checking=accept-new", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert first_use.read_text().startswith(lab.hosts["kt2"] + " ")
    lab.ssh("kt2", f"rm -f {marker}")

    forged = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    changed = tmp_path / "changed"
    changed.write_text(f"{lab.hosts['kt2']} {forged}\n")
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt2", "-e", f"kfab_known_hosts_file={changed}",
                     "-e", "kfab_host_key_checking=accept-new", str(site))
    assert result.returncode == 4, result.stdout + result.stderr
    assert "SSH host key for kt2" in result.stdout and "CHANGED" in result.stdout
    assert_no_host_has(lab, marker)
