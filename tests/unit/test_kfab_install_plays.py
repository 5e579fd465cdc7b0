"""roles/kfab-install as site.yml runs it: first in the basics play, then again in the play of the roles that run
kfab. A kfab installed by the first play must still reach the later play's handlers (topic "kfab changed"),
and a run that installs nothing must restart nothing. Run over the local connection: the venv is made under the
test's directory from a wheelhouse of one small wheel named kfab."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

from kfab.provision.inventory import load_inventory
from kfab.provision.output import Output
from kfab.provision.playbook import load_playbook
from kfab.provision.runner import Options, Runner

ROLES = Path(__file__).resolve().parents[2] / "roles"
SITE = """\
- name: Basics
  hosts: all
  roles: [kfab-install]
- name: Services
  hosts: all
  roles: [kfab-install, service]
"""


def project(tmp: Path) -> Path:
    (tmp / "roles").mkdir()
    (tmp / "roles" / "kfab-install").symlink_to(ROLES / "kfab-install")
    handlers = tmp / "roles" / "service" / "handlers"
    handlers.mkdir(parents=True)
    (tmp / "roles" / "service" / "tasks").mkdir()
    (tmp / "roles" / "service" / "tasks" / "main.yml").write_text("- debug: {msg: a service of kfab}\n")
    (handlers / "main.yml").write_text(textwrap.dedent("""\
        - name: Restart the service
          debug: {msg: restarted}
          listen: kfab changed
        """))
    (tmp / "site.yml").write_text(SITE)
    (tmp / "wheelhouse").mkdir()
    with zipfile.ZipFile(tmp / "wheelhouse" / "kfab-0.1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("kfab_stand_in.py", "")
        wheel.writestr("kfab-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: kfab\nVersion: 0.1.0\n")
        wheel.writestr("kfab-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("kfab-0.1.0.dist-info/RECORD", "")
    (tmp / "inv.yml").write_text(textwrap.dedent(f"""\
        all:
          vars: {{ansible_connection: local, kfab_venv: '{tmp}/venv', kfab_wheelhouse: '{tmp}/wheelhouse'}}
          children:
            workers:
              hosts: {{h1: {{}}}}
        """))
    return tmp


def up(tmp: Path) -> list[tuple[str, str]]:
    out = io.StringIO()
    runner = Runner(load_inventory(tmp / "inv.yml"), load_playbook(tmp / "site.yml"), {}, Options(),
                    Output(out, tty=False))
    assert runner.run() == 0, out.getvalue()
    return [(t["task"], t["status"]) for t in runner.report.hosts["h1"]]


def test_a_kfab_installed_by_the_basics_play_restarts_the_services_of_the_later_play(tmp_path):
    tmp = project(tmp_path)
    tasks = up(tmp)
    install = "kfab-install : Install kfab into its venv from a wheelhouse built here (no PyPI needed on the host)"
    announce = "kfab-install : Announce a kfab installed by an earlier play of this run"
    assert [s for t, s in tasks if t in (install, announce)] == ["changed", "skipped", "ok", "changed"], tasks
    services = tasks.index(("service : debug", "ok"))
    assert ("handler service : Restart the service", "ok") in tasks[services:], tasks
    # the same run again: nothing to install, nothing to restart
    tasks = up(tmp)
    assert not [t for t, s in tasks if s == "changed"], tasks
    assert "handler service : Restart the service" not in [t for t, _ in tasks], tasks
