"""Play files and roles are loaded and checked as a whole before anything connects: each mistake gets
one line naming the file (and line), the host and the task."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kfab.cli import main
from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory
from kfab.provision.playbook import load_playbook
from kfab.provision.preflight import preflight

REPO = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, tasks: str, templates: dict | None = None, defaults: str = "",
            handlers: str | None = None) -> Path:
    role = tmp_path / "roles" / "r"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(textwrap.dedent(tasks))
    (role / "defaults").mkdir()
    (role / "defaults" / "main.yml").write_text(textwrap.dedent(defaults))
    if handlers is not None:
        (role / "handlers").mkdir()
        (role / "handlers" / "main.yml").write_text(textwrap.dedent(handlers))
    (role / "templates").mkdir()
    for name, text in (templates or {}).items():
        (role / "templates" / name).write_text(text)
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [r]\n")
    # Port 1 on loopback: if anything tried to connect, the run would report the host unreachable.
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    return tmp_path


def load_error(tmp_path: Path) -> ProvisionError:
    with pytest.raises(ProvisionError) as err:
        load_playbook(tmp_path / "site.yml")
    return err.value


def test_the_committed_site_and_role_common_load_and_pass_preflight():
    plays = load_playbook(REPO / "site.yml")
    assert [r.role.name for r in plays[0].roles] == ["common", "kfab-install"]   # kfab installed at once everywhere
    inventory = load_inventory(REPO / "inventory" / "example-homelab.yml")
    assert preflight(inventory, plays, {}, list(inventory.hosts)) == []


def test_unknown_module_names_file_line_and_task(tmp_path):
    project(tmp_path, """\
        - name: fine
          command: "true"
        - name: typo
          pakage: {name: curl}
        """)
    err = load_error(tmp_path)
    assert "couldn't resolve module/action 'pakage'" in str(err)
    assert err.file.endswith("roles/r/tasks/main.yml") and err.line == 4 and err.task == "typo"


def test_unknown_task_key_and_unknown_argument(tmp_path):
    project(tmp_path, "- name: t\n  command: 'true'\n  whne: x\n")
    assert "'whne' is not a valid attribute for a Task" in str(load_error(tmp_path))
    (tmp_path / "roles/r/tasks/main.yml").write_text("- name: t\n  package: {name: curl, stat: present}\n")
    assert "module 'package': unknown argument 'stat'" in str(load_error(tmp_path))
    (tmp_path / "roles/r/tasks/main.yml").write_text("- name: t\n  package: {name: curl, state: latest}\n")
    assert "expected one of present, absent" in str(load_error(tmp_path))
    (tmp_path / "roles/r/tasks/main.yml").write_text("- name: t\n  template: {dest: /x}\n")
    assert "argument 'src' is required" in str(load_error(tmp_path))


def test_template_syntax_error_names_template_file_and_line(tmp_path):
    project(tmp_path, "- template: {src: a.j2, dest: /etc/a}\n",
            templates={"a.j2": "line one\n{% if x %}\nno endif\n"})
    err = load_error(tmp_path)
    assert "template syntax error" in str(err) and err.file.endswith("templates/a.j2")


def test_missing_template_and_unknown_handler(tmp_path):
    project(tmp_path, "- template: {src: nope.j2, dest: /etc/a}\n")
    assert "Could not find or access 'nope.j2'\nSearched in:\n\t" in str(load_error(tmp_path))
    (tmp_path / "roles/r/tasks/main.yml").write_text("- command: 'true'\n  notify: restart it\n")
    assert "notifies 'restart it', but no role of this play has a handler" in str(load_error(tmp_path))


def test_bad_yaml_in_tasks_names_line(tmp_path):
    project(tmp_path, "- name: a\n  command: 'true'\n- name: [b\n")
    err = load_error(tmp_path)
    assert "invalid YAML" in str(err) and err.line == 3


def test_undefined_variable_found_before_connecting(tmp_path):
    project(tmp_path, """\
        - name: uses a defined one
          command: "echo {{ greeting }}"
        - name: guarded
          command: "echo {{ maybe }}"
          when: maybe is defined
        - name: render
          template: {src: a.j2, dest: /etc/a}
        """, templates={"a.j2": "ok {{ greeting }}\n{{ kfab_facts.hostname }}\nport {{ portt }}\n"},
            defaults="greeting: hi\n")
    plays = load_playbook(tmp_path / "site.yml")
    inventory = load_inventory(tmp_path / "inv.yml")
    errors = preflight(inventory, plays, {}, ["h1"])
    assert len(errors) == 1
    text = str(errors[0])
    assert "'portt' is undefined" in text and "templates/a.j2:3" in text
    assert "host h1" in text and "task 'r : render'" in text


def test_kfab_up_with_invalid_input_runs_nothing(tmp_path, capsys, monkeypatch):
    project(tmp_path, "- command: \"echo {{ nope }}\"\n")
    monkeypatch.chdir(tmp_path)
    assert main(["up", "-i", "inv.yml"]) == 1
    out, err = capsys.readouterr()
    assert "'nope' is undefined" in err and "nothing was run" in err
    assert "PLAY" not in out and "unreachable" not in out


def test_kfab_up_unreachable_host_is_reported_in_recap(tmp_path, capsys, monkeypatch):
    project(tmp_path, "- command: \"true\"\n")
    monkeypatch.chdir(tmp_path)
    assert main(["up", "-i", "inv.yml"]) == 4
    out, _ = capsys.readouterr()
    assert "unreachable h1: connect: cannot connect to 127.0.0.1:1" in out
    recap = out.split("RECAP")[1].splitlines()
    assert recap[2].split() == ["h1", "0", "0", "0", "1", "0", "0", "0"]


def test_import_tasks_and_role_vars(tmp_path):
    project(tmp_path, """\
        - command: "echo first"
        - import_tasks: more.yml
          tags: [extra]
          when: flag
        """)
    (tmp_path / "roles/r/tasks/more.yml").write_text("- name: imported\n  command: \"echo {{ v }}\"\n  tags: [own]\n")
    (tmp_path / "roles/r/vars").mkdir()
    (tmp_path / "roles/r/vars/main.yml").write_text("v: from-role-vars\n")
    plays = load_playbook(tmp_path / "site.yml")
    tasks = plays[0].roles[0].role.tasks
    assert [t.name for t in tasks] == ["command", "imported"]
    assert tasks[1].when == ["flag"] and tasks[1].tags == ["extra", "own"]
    assert tasks[1].file.endswith("more.yml")
    from kfab.provision.context import RunVars
    run = RunVars(load_inventory(tmp_path / "inv.yml"), {})
    assert run.host_vars("h1", plays[0], plays[0].roles[0])["v"] == "from-role-vars"
    (tmp_path / "roles/r/tasks/more.yml").write_text("- import_tasks: main.yml\n")
    assert "import_tasks loop" in str(load_error(tmp_path))


def test_preflight_skips_tasks_certainly_off_and_tolerates_run_time_values(tmp_path):
    project(tmp_path, """\
        - name: off on this host
          command: "echo {{ only_elsewhere }}"
          when: feature_on
        - name: uses facts and a registered result
          command: "echo {{ kfab_facts.cpus * 2 }} {{ out.stdout | upper }} {{ hostvars['h1'].kfab_facts.arch }}"
          register: out
        - name: loops over a list
          command: "echo {{ item.name }}"
          loop: "{{ users }}"
        - name: loop item with a typo
          command: "echo {{ item.nmae }}"
          loop: "{{ users }}"
        """, defaults="feature_on: false\nusers: [{name: a}]\n")
    plays = load_playbook(tmp_path / "site.yml")
    errors = preflight(load_inventory(tmp_path / "inv.yml"), plays, {}, ["h1"])
    assert [e.task for e in errors] == ["r : loop item with a typo"]
    assert "has no attribute 'nmae'" in str(errors[0])


def test_preflight_finds_a_missing_local_file_to_upload(tmp_path):
    project(tmp_path, """\
        - name: upload credentials
          copy: {src: "{{ creds }}/{{ inventory_hostname }}/kubeconfig", dest: /etc/k}
        - name: from a registered path (known only at run time)
          copy: {src: "{{ out.stdout }}", dest: /etc/k2}
          register: out
        """, defaults=f"creds: {tmp_path}/creds\n")
    plays = load_playbook(tmp_path / "site.yml")
    inventory = load_inventory(tmp_path / "inv.yml")
    errors = preflight(inventory, plays, {}, ["h1"])
    assert len(errors) == 1 and f"Could not find or access '{tmp_path}/creds/h1/kubeconfig'" in str(errors[0])
    (tmp_path / "creds" / "h1").mkdir(parents=True)
    (tmp_path / "creds" / "h1" / "kubeconfig").write_text("x")
    assert preflight(inventory, plays, {}, ["h1"]) == []


def test_kfab_plan_exit_codes_failed_and_unreachable(tmp_path, monkeypatch, capsys):
    project(tmp_path, "- fail: {msg: stop}\n  when: inventory_hostname == 'h1'\n")
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h1: {ansible_connection: local}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "-i", "inv.yml"]) == 1          # a task failed: the plan could not be made
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h2: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    assert main(["plan", "-i", "inv.yml"]) == 4          # unreachable, as kfab up
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h3: {ansible_connection: local}\n")
    assert main(["plan", "-i", "inv.yml"]) == 0          # the fail is skipped: nothing would change
