"""A role written for Ansible (tests/ansible_compat: meta dependency, set_fact, stat, assert, template,
lineinfile with insertafter/insertbefore/backrefs/absent/create, blockinfile, import_tasks, include_tasks
with a loop, `when` per item, block/rescue/always, until, ignore_errors + `is failed`, handlers with listen
and flush_handlers) run unchanged by ansible-playbook (ansible-core, a test-only dependency) and by kfab,
both over the local connection into their own directory: the same files, modes and contents, the same
ok/changed/skipped/rescued/ignored counts, and nothing changed on a rerun. Then `kfab plan` of that role:
exit 0 on the converged directory, 2 (changes pending, with --json) after a hand edit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROLE_DIR = Path(__file__).resolve().parents[1] / "ansible_compat"
BIN = Path(sys.executable).parent
COUNTS = ("ok", "changed", "failed", "skipped", "rescued", "ignored")


def ansible(root: Path, home: Path, inventory: Path) -> dict[str, int]:
    env = os.environ | {"ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                        "ANSIBLE_FORCE_COLOR": "0"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                           "-e", f"app_root={root}", "-e", "prec_extra=extra",
                           "-e", f"ansible_python_interpreter={sys.executable}",
                           "site.yml"], cwd=ROLE_DIR, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(out for out in proc.stdout.splitlines() if out.startswith("localhost") and "changed=" in out)
    return {k: int(re.search(rf"{k}=(\d+)", line).group(1)) for k in COUNTS}


# Ansible's INI format; the group vars are one level of the precedence the role writes out.
INVENTORY = "[app]\nlocalhost ansible_connection=local\n\n[app:vars]\nprec_inventory=inventory\nprec_play=inventory\n"


def kfab(command: str, root: Path, inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kfab"), command, "-i", str(inventory), "site.yml", "-e", f"app_root={root}",
                           "-e", "prec_extra=extra", *extra], cwd=ROLE_DIR, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def kfab_counts(proc: subprocess.CompletedProcess) -> dict[str, int]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = proc.stdout.split("\nRECAP\n", 1)[1].splitlines()
    columns = [c.lower() for c in rows[0].split()[1:]]
    cells = dict(zip(columns, map(int, rows[1].split()[1:])))
    return {k: cells[k] for k in COUNTS}


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root: kind, mode, link target (root-relative) or content."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            found[rel] = ("link", oct(st.st_mode & 0o7777), os.readlink(path).replace(str(root), "ROOT"))
        elif path.is_dir():
            found[rel] = ("dir", oct(st.st_mode & 0o7777))
        else:
            found[rel] = ("file", oct(st.st_mode & 0o7777), path.read_bytes())
    return found


def test_a_role_written_for_ansible_runs_the_same_under_kfab(tmp_path):
    by_ansible, by_kfab, home = tmp_path / "ansible", tmp_path / "kfab", tmp_path / "ansible-home"
    for d in (by_ansible, by_kfab, home):
        d.mkdir()
    # One inventory, in Ansible's INI format, for both.
    inventory = tmp_path / "hosts"
    inventory.write_text(INVENTORY)

    first_ansible = ansible(by_ansible, home, inventory)
    first_kfab = kfab_counts(kfab("up", by_kfab, inventory))
    assert first_kfab == first_ansible
    assert first_kfab["changed"] > 20 and first_kfab["rescued"] == 1 and first_kfab["ignored"] == 1
    assert tree(by_kfab) == tree(by_ansible)
    assert (by_kfab / "etc/sshd_config").read_text().startswith("Port 2222\n# Authentication\nPermitRootLogin no\n")

    again_ansible = ansible(by_ansible, home, inventory)
    again_kfab = kfab_counts(kfab("up", by_kfab, inventory))
    assert again_kfab == again_ansible and again_kfab["changed"] == 0
    assert tree(by_kfab) == tree(by_ansible)

    converged = kfab("plan", by_kfab, inventory)
    assert converged.returncode == 0, converged.stdout + converged.stderr
    conf = by_kfab / "etc/demo/app.conf"
    conf.write_text(conf.read_text() + "# edited by hand\n")
    pending = kfab("plan", by_kfab, inventory, "--json")
    assert pending.returncode == 2, pending.stdout + pending.stderr
    plan = json.loads(pending.stdout)
    assert plan["changed"] is True and "RECAP" in pending.stderr
    tasks = plan["hosts"]["localhost"]["tasks"]
    assert [t["task"] for t in tasks if t["changed"]] == ["homelab_app : Configuration"]
    # The notified handler is a shell command: not run in check mode (as Ansible), so skipped.
    assert {"task": "handler homelab_app : restart app", "status": "skipped"}.items() <= next(
        t for t in tasks if t["task"].startswith("handler homelab_app : restart")).items()
    configuration = next(t for t in tasks if t["task"] == "homelab_app : Configuration")
    assert "-# edited by hand" in configuration["diff"][0]["diff"]
    assert conf.read_text().endswith("# edited by hand\n")     # the plan changed nothing


FACTS = ("ansible_distribution", "ansible_distribution_release", "ansible_distribution_major_version",
         "ansible_os_family", "ansible_architecture", "ansible_kernel", "ansible_processor_vcpus",
         "ansible_service_mgr", "ansible_user_id", "ansible_system")


def test_facts_under_ansible_names_match_ansible_setup(tmp_path):
    """Roles test ansible_os_family, ansible_distribution_release, ...: kfab's facts under those names agree
    with what ansible-core's setup module finds on the same machine."""
    home = tmp_path / "ansible-home"
    env = os.environ | {"ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible"), "-i", "localhost,", "-c", "local", "localhost", "-m", "setup",
                           "-e", f"ansible_python_interpreter={sys.executable}"], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    setup = json.loads(proc.stdout.split("=>", 1)[1])["ansible_facts"]
    role = tmp_path / "roles" / "facts" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("- copy:\n    dest: " + str(tmp_path / "facts.json") + "\n    content: \"{{ {"
                                   + ", ".join(f"'{f}': {f}" for f in FACTS) + "} | to_json }}\"\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [facts]\n")
    (tmp_path / "hosts").write_text("localhost ansible_connection=local\n")
    proc = subprocess.run([str(BIN / "kfab"), "up", "-i", str(tmp_path / "hosts"), str(tmp_path / "site.yml")],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours = json.loads((tmp_path / "facts.json").read_text())
    assert {f: str(ours[f]) for f in FACTS} == {f: str(setup[f]) for f in FACTS}
