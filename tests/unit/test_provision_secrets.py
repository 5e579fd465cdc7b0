"""Secrets never reach a run's output: the iscsi-target role's CHAP password in a plan diff (the known leak),
-v commands and their output, error lines, no_log tasks and the --json report — yet a plan still shows that
the line changed. Runs kfab's runner over the local connection with the role's real template."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from kfab.cli import main
from kfab.provision.inventory import load_inventory
from kfab.provision.output import Output
from kfab.provision.playbook import load_playbook
from kfab.provision.runner import Options, Runner
from kfab.provision.secrets import MASK, NO_LOG_MESSAGE, Masker, is_secret_name
from tests.unit.test_provision_vault import vaulted_inventory

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "roles" / "iscsi-target" / "templates" / "kfab-static.conf.j2"


def project(tmp: Path, tasks: str, password: str) -> None:
    role = tmp / "roles" / "r"
    (role / "tasks").mkdir(parents=True, exist_ok=True)
    (role / "templates").mkdir(exist_ok=True)
    shutil.copy(TEMPLATE, role / "templates" / "targets.conf.j2")
    (role / "tasks" / "main.yml").write_text(tasks)
    (tmp / "site.yml").write_text("- hosts: all\n  roles: [r]\n")
    (tmp / "inv.yml").write_text(json.dumps({"all": {"hosts": {"h1": {}}, "vars": {
        "ansible_connection": "local", "out": str(tmp), "iscsi_target_iqn_base": "iqn.2026-01.lab.kfab",
        "iscsi_target_lun_dir": "/srv/iscsi", "iscsi_target_chap_user": "kfab",
        "iscsi_target_chap_password": password, "iscsi_target_acl": ["10.0.0.2"],
        "iscsi_target_volumes": [{"name": "vol1", "size": "1G"}],
        "ansible_ssh_private_key_file": "/root/.ssh/id_lab"}}}))


def run(tmp: Path, **options) -> tuple[int, str, Runner]:
    out = io.StringIO()
    runner = Runner(load_inventory(tmp / "inv.yml"), load_playbook(tmp / "site.yml"), {}, Options(**options),
                    Output(out, tty=False, verbose=options.get("verbose", 0)))
    return runner.run(), out.getvalue(), runner


TASKS = """\
- name: iSCSI targets
  template: {src: targets.conf.j2, dest: "{{ out }}/targets.conf", mode: "0600"}
- name: a command that names the password
  command: "echo login {{ iscsi_target_chap_user }} {{ iscsi_target_chap_password }}"
  changed_when: false
"""


def test_a_plan_shows_the_chap_line_changed_without_either_password(tmp_path):
    project(tmp_path, TASKS, "old-secret-pass1")
    code, _, _ = run(tmp_path)
    assert code == 0 and "old-secret-pass1" in (tmp_path / "targets.conf").read_text()
    project(tmp_path, TASKS, "new-secret-pass2")
    code, text, runner = run(tmp_path, check=True, diff=True, verbose=2)
    assert code == 0, text
    assert f"-    incominguser kfab {MASK}" in text and f"+    incominguser kfab {MASK}" in text
    assert f"$ echo login kfab {MASK}" in text, "-v commands are masked"
    assert f"login kfab {MASK}" in text.split("$ echo")[1], "and so is their output"
    report = json.dumps(runner.report.as_dict(runner.stats))
    for secret in ("old-secret-pass1", "new-secret-pass2"):
        assert secret not in text and secret not in report


def test_no_log_hides_the_result_but_not_that_something_changed(tmp_path):
    project(tmp_path, """\
- name: write the token
  copy: {content: "token=abc123xyz\\nother=1\\n", dest: "{{ out }}/token.conf"}
  no_log: true
- name: fail quietly
  command: "sh -c 'echo abc123xyz >&2; exit 3'"
  no_log: true
""", "some-secret-pass")
    code, text, _ = run(tmp_path, diff=True, verbose=2)
    assert code != 0
    assert "abc123xyz" not in text
    assert f"+{MASK}" in text, "the diff keeps its shape: two added lines"
    assert NO_LOG_MESSAGE in text


def test_secret_names_and_the_values_they_mask():
    assert is_secret_name("iscsi_target_chap_password") and is_secret_name("registry_token")
    assert is_secret_name("etcd_encryption_key") and is_secret_name("vault_secret")
    assert not is_secret_name("ansible_ssh_private_key_file") and not is_secret_name("kfab_pki_dir")
    assert not is_secret_name("token_name") and not is_secret_name("keyring_path")
    masker = Masker()
    masker.learn({"hunter22", "no"})  # too short to mask ("no" would hide every "no")
    assert masker.text("password hunter22 says no") == f"password {MASK} says no"


def test_values_from_the_vault_are_masked_whatever_their_variables_are_called(tmp_path, monkeypatch, capsys):
    """A vault-encrypted group_vars file and a !vault string with names no pattern matches: what they hold is
    secret by where it came from (ansible-vault encrypts them here, as a user would)."""
    inventory = vaulted_inventory(tmp_path, "motd_line: open-sesame-4711\n", "greeting", "mellon-2718")
    (tmp_path / "out").write_text("old\n")
    role = tmp_path / "roles" / "r" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(
        f"- copy: {{content: \"{{{{ motd_line }}}} {{{{ greeting }}}}\\n\", dest: '{tmp_path}/out', mode: '0600'}}\n"
        "- command: \"echo {{ greeting }} {{ motd_line }}\"\n  changed_when: false\n"
        "- fail: {msg: \"refusing {{ greeting }}\"}\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [r]\n")
    monkeypatch.chdir(tmp_path)
    code = main(["plan", "-i", str(inventory), "-vv", "--vault-password-file", str(tmp_path / "vault-pass")])
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert code != 0 and "refusing " + MASK in text, text    # the error line, masked
    assert "-old" in text and f"+{MASK} {MASK}" in text, "the plan still shows the line that changes"
    assert "open-sesame-4711" not in text and "mellon-2718" not in text, text
