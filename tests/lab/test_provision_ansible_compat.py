"""A role written for Ansible (tests/ansible_compat) on fresh lab hosts over SSH: ansible-playbook (ansible-core,
a test-only dependency; pipelining, ControlPersist, host keys checked) applies it to cmp1+cmp2 and kfab to
cmp3+cmp4, each pair named app1/app2 in its inventory. Then files (under the app root and the systemd units),
modes, owners, groups and contents, the account (passwd, group, shadow) and the units' state are compared byte
for byte, and so are the per-host recap counts; kfab's rerun changes nothing and `kfab plan` says so (exit 0).

The role uses: meta dependencies, vars precedence across defaults/inventory/play vars/vars_files/role vars/
task vars/-e, set_fact, stat, assert, template, lineinfile/blockinfile/replace, import_tasks, include_tasks
(looped, and skipped by `when`), include_role with tasks_from, `when` per item, with_items/with_dict,
loop_control (loop_var, index_var, label), block/rescue/always, until, ignore_errors + `is failed`,
changed_when/failed_when lists, environment, no_log, unarchive, run_once, delegate_to, serial, group, user
with password_hash, become_user (become_method su), systemd units and a timer, handlers with listen and
flush_handlers."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.lab.conftest import fresh_lab

INVENTORY = Path(__file__).parent / "inventory" / "compat.yml"
ROLE_DIR = Path(__file__).resolve().parents[1] / "ansible_compat"
BIN = Path(sys.executable).parent
APP_ROOT = "/srv/homelab"
SIDES = {"ansible": ("cmp1", "cmp2"), "kfab": ("cmp3", "cmp4")}
NAMES = ("app1", "app2")
# Every count of the recap: kfab's `ok` counts as ansible-playbook's (changed tasks, ignored failures and
# included files in it too).
COUNTS = ("ok", "changed", "failed", "skipped", "rescued", "ignored")

# What one host holds after the role: every path under the app root and the role's systemd units (kind, mode,
# owner, group, content or link target), the account, and whether the units are enabled and running.
SNAPSHOT = r"""
import base64, grp, json, os, pwd, subprocess, sys
root, found = sys.argv[1], {}
def entry(path):
    st = os.lstat(path)
    who = (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o7777))
    if os.path.islink(path):
        return ("link",) + who + (os.readlink(path),)
    if os.path.isdir(path):
        return ("dir",) + who
    return ("file",) + who + (base64.b64encode(open(path, "rb").read()).decode(),)
found[root] = entry(root)
for top, dirs, files in os.walk(root):
    dirs.sort()
    for name in dirs + files:
        found[os.path.join(top, name)] = entry(os.path.join(top, name))
for top, dirs, files in os.walk("/etc/systemd/system"):
    for name in dirs + files:
        if name.startswith("homelab-"):
            found[os.path.join(top, name)] = entry(os.path.join(top, name))
def out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
found["account"] = [out("getent", "passwd", "homelab"), out("getent", "group", "homelab"),
                    out("getent", "shadow", "homelab")]
found["units"] = [out("systemctl", "is-enabled", "homelab-app.service", "homelab-tick.timer"),
                  out("systemctl", "is-active", "homelab-app.service", "homelab-tick.timer")]
print(json.dumps(found, sort_keys=True))
"""


@pytest.fixture(scope="module")
def compat_lab():
    yield from fresh_lab(INVENTORY)


def side_inventory(lab, tmp_path: Path, side: str) -> Path:
    """The same inventory for both tools but the addresses: app1/app2 on this side's two hosts."""
    inventory = {"all": {
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(lab.key_file),
                 "ansible_python_interpreter": "/usr/bin/python3",
                 "kfab_known_hosts_file": str(lab.known_hosts), "kfab_host_key_checking": "strict",
                 "app_real_host": True},
        "children": {"app": {
            "hosts": {name: {"ansible_host": lab.hosts[host]} for name, host in zip(NAMES, SIDES[side])},
            "vars": {"prec_inventory": "inventory", "prec_play": "inventory"}}}}}
    path = tmp_path / f"{side}.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def ansible_playbook(lab, inventory: Path, home: Path) -> dict[str, dict[str, int]]:
    home.mkdir(exist_ok=True)
    sockets = Path(tempfile.mkdtemp(prefix="kfab-cp-", dir="/tmp"))   # a socket path must stay under 108 bytes
    env = os.environ | {
        "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={sockets}/%C "
                            f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "-f", "10",
                           "-e", f"app_root={APP_ROOT}", "-e", "prec_extra=extra", "site.yml"],
                          cwd=ROLE_DIR, env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    for socket in sockets.iterdir():     # end ControlPersist's masters now rather than in 60 s
        subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "x"], capture_output=True, timeout=30)
    shutil.rmtree(sockets, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    recap = proc.stdout.split("PLAY RECAP", 1)[1]
    return {name: {k: int(re.search(rf"^{name}\s.*?\b{k}=(\d+)", recap, re.M).group(1)) for k in COUNTS}
            for name in NAMES}


def kfab(command: str, inventory: Path) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, int]]]:
    proc = subprocess.run([str(BIN / "kfab"), command, "-i", str(inventory), "site.yml",
                           "-e", f"app_root={APP_ROOT}", "-e", "prec_extra=extra"],
                          cwd=ROLE_DIR, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    if "\nRECAP\n" not in proc.stdout:
        return proc, {}
    rows = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout.split("\nRECAP\n", 1)[1]).splitlines()
    columns = [c.lower() for c in rows[0].split()[1:]]
    counts = {}
    for row in rows[1:]:
        cells = row.split()
        if cells and cells[0] in NAMES:
            counts[cells[0]] = {k: v for k, v in zip(columns, map(int, cells[1:])) if k in COUNTS}
    return proc, counts


def snapshot(lab, host: str) -> dict:
    proc = lab.ssh(host, f"python3 -c {shlex.quote(SNAPSHOT)} {APP_ROOT}", timeout=120)
    return json.loads(proc.stdout)


def text(found: dict, path: str) -> str:
    return base64.b64decode(found[f"{APP_ROOT}/{path}"][4]).decode()


def test_the_role_leaves_the_same_hosts_under_ansible_and_under_kfab(compat_lab, tmp_path):
    lab = compat_lab
    by_ansible = ansible_playbook(lab, side_inventory(lab, tmp_path, "ansible"), tmp_path / "ansible-home")
    kfab_inventory = side_inventory(lab, tmp_path, "kfab")
    first, by_kfab = kfab("up", kfab_inventory)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr

    assert by_kfab == by_ansible
    assert by_kfab["app1"]["changed"] > 40 and by_kfab["app1"]["rescued"] == 1

    for name, (theirs, ours) in zip(NAMES, zip(*SIDES.values())):
        expected, got = snapshot(lab, theirs), snapshot(lab, ours)
        differ = {path: (expected.get(path), got.get(path)) for path in sorted(set(expected) | set(got))
                  if expected.get(path) != got.get(path)}
        assert not differ, f"{name}: ansible ({theirs}) vs kfab ({ours}): {differ}"

        # The same, and also what the role means: spot checks that would catch both tools being wrong alike.
        assert got[f"{APP_ROOT}/data/whoami"][:3] == ["file", "homelab", "homelab"]
        assert got[f"{APP_ROOT}/data/notes"][:4] == ["file", "homelab", "homelab", "0o640"]
        assert got["units"] == ["enabled\nenabled", "active\nactive"]
        assert got["account"][2].startswith("homelab:$6$homelabsalt$")
        assert text(got, "data/whoami") == "homelab\n"
        assert text(got, "var/batch") == f"{name} of app1,app2\n"     # serial: [1, "100%"]
        assert text(got, "var/play-hosts") == "app1 app2\n"           # run_once, registered on both
        assert text(got, "etc/precedence.txt").splitlines()[-3:] == [
            "role vars: role vars", "task vars: task vars", "extra vars: extra"]

    # delegate_to: both hosts reported to app1.
    first_host = snapshot(lab, SIDES["kfab"][0])
    assert {p.rsplit("/", 1)[1] for p in first_host if p.startswith(f"{APP_ROOT}/var/peers/")} == {"app1", "app2"}

    again, counts = kfab("up", kfab_inventory)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr
    assert {name: c["changed"] for name, c in counts.items()} == {"app1": 0, "app2": 0}, again.stdout[-4000:]
    plan, _ = kfab("plan", kfab_inventory)
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr
