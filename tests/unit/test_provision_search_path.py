"""A task finds its templates and files where Ansible finds them (ansible-core 2.18: Task.get_search_path,
DataLoader.path_dwim_relative_stack): the role, the roles that included it or depend on it, the task file's
directory, then the play file's templates/ or files/ — so roles share the top-level templates/ and a role's
own template of the same name wins. Plays run over the local connection, writing only under the test's
temporary directory."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import load_inventory
from kfab.provision.output import Output
from kfab.provision.playbook import load_playbook
from kfab.provision.runner import Options, Runner
from kfab.provision.searchpath import candidates, find, task_stack

REPO = Path(__file__).resolve().parents[2]


def project(tmp: Path, files: dict[str, str], site: str = "- hosts: all\n  roles: [r]\n") -> Path:
    for rel, text in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (tmp / "site.yml").write_text(textwrap.dedent(site))
    (tmp / "inv.yml").write_text(f"all:\n  vars: {{ansible_connection: local, out: '{tmp}'}}\n  hosts:\n    h1:\n")
    return tmp


def run(tmp: Path) -> tuple[int, str]:
    out = io.StringIO()
    runner = Runner(load_inventory(tmp / "inv.yml"), load_playbook(tmp / "site.yml"), {}, Options(),
                    Output(out, tty=False))
    return runner.run(), out.getvalue()


def test_a_role_task_searches_role_then_task_dir_then_the_play_directory(tmp_path):
    role = tmp_path / "roles" / "r"
    stack = task_stack([role], role / "tasks")
    assert candidates(stack, tmp_path, "templates", "x.j2") == [
        role / "templates" / "x.j2", role / "x.j2",
        role / "tasks" / "templates" / "x.j2", role / "tasks" / "x.j2",
        tmp_path / "templates" / "x.j2", tmp_path / "x.j2"]
    # `src: files/x`: files/files/x first (as ansible-core 2.18 does), then files/x; an absolute path as is
    assert candidates(stack, tmp_path, "files", "files/x")[:2] == [role / "files" / "files" / "x", role / "files" / "x"]
    assert candidates(stack, tmp_path, "files", "/etc/hosts") == [Path("/etc/hosts")]


@pytest.mark.parametrize("task_file, includers", [
    ("roles/d/tasks/main.yml", ["roles/r"]),
    ("roles/d/tasks/sub/more.yml", []),
    ("site.yml", None),
])
def test_the_order_is_ansible_cores_own(tmp_path, task_file, includers):
    """Same list as ansible-core's DataLoader gives for the same stack (its error's 'Searched in')."""
    dataloader = pytest.importorskip("ansible.parsing.dataloader")
    errors = pytest.importorskip("ansible.errors")
    for d in ("roles/d/tasks/sub", "roles/r/tasks"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "roles/d/tasks/main.yml").write_text("[]\n")
    (tmp_path / "roles/r/tasks/main.yml").write_text("[]\n")
    if includers is None:      # a play's own task: no role, the play file's directory
        stack = task_stack([], (tmp_path / task_file).parent)
    else:
        stack = task_stack([tmp_path / "roles/d", *(tmp_path / i for i in includers)], (tmp_path / task_file).parent)
    loader = dataloader.DataLoader()
    loader.set_basedir(str(tmp_path))
    for subdir, source in (("templates", "x.j2"), ("files", "a/b.txt"), ("templates", "templates/y.j2")):
        with pytest.raises(errors.AnsibleFileNotFound) as exc:
            loader.path_dwim_relative_stack([str(p) for p in stack], subdir, source)
        expected = list(dict.fromkeys(Path(p) for p in exc.value.paths))
        assert candidates(stack, tmp_path, subdir, source) == expected


def test_not_found_names_every_path_searched_in_ansibles_words(tmp_path):
    role = tmp_path / "roles" / "r"
    with pytest.raises(ProvisionError) as exc:
        find(task_stack([role], role / "tasks"), tmp_path, "templates", "unit.j2")
    assert exc.value.message == (
        "Could not find or access 'unit.j2'\nSearched in:\n"
        f"\t{role}/templates/unit.j2\n\t{role}/unit.j2\n\t{role}/tasks/templates/unit.j2\n\t{role}/tasks/unit.j2\n"
        f"\t{tmp_path}/templates/unit.j2\n\t{tmp_path}/unit.j2 on the control machine")


def test_a_missing_template_stops_the_load_with_the_searched_paths(tmp_path):
    project(tmp_path, {"roles/r/tasks/main.yml": "- template: {src: nope.j2, dest: /x}\n"})
    with pytest.raises(ProvisionError) as exc:
        load_playbook(tmp_path / "site.yml")
    text = str(exc.value)
    assert "roles/r/tasks/main.yml:1" in text and "Could not find or access 'nope.j2'" in text
    assert f"\t{tmp_path}/templates/nope.j2\n" in text


def test_roles_use_the_shared_template_and_a_role_local_one_shadows_it(tmp_path):
    project(tmp_path, {
        "templates/unit.j2": "shared {{ inventory_hostname }}\n",
        "roles/r/tasks/main.yml": "- template: {src: unit.j2, dest: '{{ out }}/r.out'}\n",
        "roles/s/tasks/main.yml": "- template: {src: unit.j2, dest: '{{ out }}/s.out'}\n",
        "roles/s/templates/unit.j2": "own {{ inventory_hostname }}\n",
    }, site="- hosts: all\n  roles: [r, s]\n")
    code, text = run(tmp_path)
    assert code == 0, text
    assert (tmp_path / "r.out").read_text() == "shared h1\n"
    assert (tmp_path / "s.out").read_text() == "own h1\n"


def test_a_role_template_extends_the_shared_one(tmp_path):
    project(tmp_path, {
        "templates/base.j2": "[Unit]\nDescription={% block description %}{% endblock +%}\nEnd\n",
        "roles/r/templates/svc.j2": '{% extends "base.j2" %}{% block description %}svc on {{ inventory_hostname }}'
                                    '{% endblock %}',
        "roles/r/tasks/main.yml": "- template: {src: svc.j2, dest: '{{ out }}/svc'}\n",
    })
    code, text = run(tmp_path)
    assert code == 0, text
    assert (tmp_path / "svc").read_text() == "[Unit]\nDescription=svc on h1\nEnd\n"


def test_copy_and_lookups_find_files_beside_the_play(tmp_path):
    project(tmp_path, {
        "files/motd": "hello\n",
        "templates/greeting.j2": "hi {{ inventory_hostname }}",
        "roles/r/tasks/main.yml": """\
            - copy: {src: motd, dest: "{{ out }}/motd"}
            - copy:
                content: "{{ lookup('file', 'motd') }}|{{ lookup('template', 'greeting.j2') }}"
                dest: "{{ out }}/looked-up"
            """,
    })
    code, text = run(tmp_path)
    assert code == 0, text
    assert (tmp_path / "motd").read_text() == "hello\n"
    assert (tmp_path / "looked-up").read_text() == "hello|hi h1"


def test_an_included_role_and_a_dependency_find_the_including_roles_files(tmp_path):
    project(tmp_path, {
        "roles/r/templates/from-r.j2": "r's template\n",
        "roles/r/tasks/main.yml": "- include_role: {name: inc}\n",
        "roles/inc/tasks/main.yml": "- template: {src: from-r.j2, dest: '{{ out }}/inc.out'}\n",
        "roles/top/meta/main.yml": "dependencies: [dep]\n",
        "roles/top/files/from-top": "top's file\n",
        "roles/top/tasks/main.yml": "- debug: {msg: top}\n",
        "roles/dep/tasks/main.yml": "- copy: {src: from-top, dest: '{{ out }}/dep.out'}\n",
    }, site="- hosts: all\n  roles: [r, top]\n")
    # Ansible finds these at run time only (the including role is known then): so does kfab's run.
    code, text = run(tmp_path)
    assert code == 0, text
    assert (tmp_path / "inc.out").read_text() == "r's template\n"
    assert (tmp_path / "dep.out").read_text() == "top's file\n"


def _rendered_units(inventory: str, extra: dict) -> dict[tuple[str, str], str]:
    """dest -> text of every systemd unit site.yml's roles render for the inventory's hosts (as `kfab up` would,
    without contacting them)."""
    from kfab.provision.apply import RoleFiles
    from kfab.provision.context import RunVars
    from kfab.provision.preflight import _tasks_in_play
    from kfab.provision.templating import evaluate, render_value
    inventory = load_inventory(REPO / inventory)
    run = RunVars(inventory, {"kfab_wheelhouse": "/tmp/wheels"} | extra)
    units = {}
    for play in load_playbook(REPO / "site.yml"):
        hosts = inventory.select(play.hosts)
        run.play_hosts = run.batch = hosts
        for host in hosts:
            for ref, task, scopes, when in _tasks_in_play(play):
                if task.module.name != "template" or task.loop is not None:
                    continue
                variables = run.host_vars(host, play, ref, scopes=scopes)
                if not all(evaluate(str(c), variables) for c in list(when) + task.when):
                    continue
                args = render_value(task.args, variables)
                if args["dest"].endswith(".service"):
                    units[host, args["dest"]] = RoleFiles(task.role, variables).render_template(args["src"])
    return units


def test_the_roles_units_extend_the_shared_unit_and_read_as_before():
    """The roles' unit templates extend templates/kfab-service.j2; what they render is what the roles' own
    whole-file templates rendered before (diffed for every host of inventory/lab.yml, tests/lab/inventory/up.yml,
    inventory/example-homelab.yml when they moved: byte-identical). Two of them, pinned."""
    units = _rendered_units("inventory/lab.yml", {"control_plane_vip": "10.79.0.100"})
    assert units["labh2", "/etc/systemd/system/kfab-node.service"] == textwrap.dedent("""\
        [Unit]
        Description=kfab node agent (runs this node's pods with Podman)
        # Restart=always retries every RestartSec for good: no start limit that would leave it failed for good.
        StartLimitIntervalSec=0
        Wants=network-online.target podman.socket
        After=network-online.target podman.socket

        [Service]
        ExecStart=/opt/kfab/venv/bin/kfab node \\
          --kubeconfig /etc/kfab/node.kubeconfig \\
          --node-name labh2 \\
          --podman-socket unix:///run/podman/podman.sock \\
          --cluster-cidr 10.244.0.0/16 \\
          --port 10250 \\
          --serving-cert /etc/kfab/node.crt \\
          --serving-key /etc/kfab/node.key \\
          --client-ca /etc/kfab/ca.crt \\
          --cluster-dns 10.96.0.10 \\
          --cluster-domain cluster.local
        Restart=always
        RestartSec=2
        # Stopping the agent must not stop the pods: they are Podman's, and the next agent adopts them.
        KillMode=process

        [Install]
        WantedBy=multi-user.target
        """)
    vip = units["labh1", "/etc/systemd/system/kfab-vip.service"]
    assert vip.startswith("# Managed by kfab (role control-plane).\n[Unit]\nDescription=kfab virtual IP of the API "
                          "(10.79.0.100, held by one control-plane host at a time)\n")
    assert "\nRestart=always\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n" in vip
    for (host, dest), text in units.items():
        assert text.endswith("\n\n[Install]\nWantedBy=multi-user.target\n"), (host, dest)
        assert "StartLimitIntervalSec=0\n" in text and "\nRestart=always\n" in text, (host, dest)
