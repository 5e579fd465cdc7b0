"""How a run behaves across hosts: a failed host stops while the others go on, --fail-fast stops all,
handlers run once at the end of a play, registered results feed later tasks, and `become` works for
a sudo user."""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from pathlib import Path

import yaml

from tests.lab.test_provision_common import recap

REPO = Path(__file__).resolve().parents[2]


def kfab_up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kfab", "up", *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def project(tmp_path: Path, tasks: str, handlers: str | None = None, play: str = "") -> Path:
    role = tmp_path / "roles" / "probe"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(textwrap.dedent(tasks))
    if handlers:
        (role / "handlers").mkdir()
        (role / "handlers" / "main.yml").write_text(textwrap.dedent(handlers))
    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  roles: [probe]\n" + play)
    return site


def test_a_failed_host_stops_there_while_the_others_go_on(lab, tmp_path):
    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path, f"""\
        - name: only kt2 fails
          command: "test {{{{ inventory_hostname }}}} != kt2"
        - name: after
          file: {{path: /root/after-{tag}, state: touch}}
        """)
    result = kfab_up("-i", str(lab.inventory), str(site))
    assert result.returncode == 2, result.stdout + result.stderr
    rows = recap(result.stdout)
    assert rows["kt2"]["failed"] == 1 and rows["kt1"]["failed"] == 0 and rows["kt3"]["failed"] == 0
    assert "failed kt2: probe : only kt2 fails: non-zero return code 1" in result.stdout
    assert lab.ssh("kt2", f"test -e /root/after-{tag}", check=False).returncode == 1
    for name in ("kt1", "kt3"):
        lab.ssh(name, f"rm /root/after-{tag}")


def test_fail_fast_stops_every_host(lab, tmp_path):
    tag = uuid.uuid4().hex[:8]
    # The other hosts are still in their first task (8 s: ample even on a loaded machine) when kt2 fails.
    site = project(tmp_path, f"""\
        - name: kt2 fails, the others are busy
          shell: "if [ {{{{ inventory_hostname }}}} = kt2 ]; then exit 1; else sleep 8; fi"
        - name: after
          file: {{path: /root/after-{tag}, state: touch}}
        """)
    result = kfab_up("-i", str(lab.inventory), "--fail-fast", str(site))
    assert result.returncode == 2, result.stdout + result.stderr
    for name in lab.hosts:
        assert lab.ssh(name, f"test -e /root/after-{tag}", check=False).returncode == 1, name


def test_handlers_run_once_at_play_end_and_only_when_notified(lab, tmp_path):
    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path, f"""\
        - name: first file
          copy: {{content: "a\\n", dest: /root/h1-{tag}}}
          notify: count
        - name: second file
          copy: {{content: "b\\n", dest: /root/h2-{tag}}}
          notify: count
        - name: last task
          command: "true"
          changed_when: false
        """, handlers=f"""\
        - name: count
          shell: "echo ran >> /root/count-{tag}"
        """)
    first = kfab_up("-i", str(lab.inventory), "--limit", "kt3", str(site))
    assert first.returncode == 0, first.stdout + first.stderr
    assert lab.ssh("kt3", f"cat /root/count-{tag}").stdout == "ran\n"
    lines = first.stdout.splitlines()
    handler = [i for i, line in enumerate(lines) if "handler probe : count" in line]
    last = [i for i, line in enumerate(lines) if "probe : last task" in line]
    assert len(handler) == 1 and handler[0] > last[0], first.stdout
    second = kfab_up("-i", str(lab.inventory), "--limit", "kt3", str(site))
    assert second.returncode == 0 and recap(second.stdout)["kt3"]["changed"] == 0, second.stdout
    assert lab.ssh("kt3", f"cat /root/count-{tag}").stdout == "ran\n"
    lab.ssh("kt3", f"rm -f /root/h1-{tag} /root/h2-{tag} /root/count-{tag}")


def test_register_when_loop_and_changed_when(lab, tmp_path):
    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path, f"""\
        - name: read the kernel's forwarding flag
          command: cat /proc/sys/net/ipv4/ip_forward
          register: fwd
          changed_when: false
        - name: write one file per item when forwarding is on
          copy: {{content: "{{{{ item }}}} {{{{ fwd.stdout }}}}\\n", dest: "/root/{{{{ item }}}}-{tag}"}}
          loop: [x, y]
          when: fwd.stdout == "1"
        - name: never
          file: {{path: /root/never-{tag}, state: touch}}
          when: fwd.rc != 0
        """)
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt1", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    row = recap(result.stdout)["kt1"]
    # As ansible-playbook's recap: ok counts the facts gathered, the command and the changed loop task.
    assert (row["ok"], row["changed"], row["skipped"]) == (3, 1, 1), result.stdout
    assert lab.ssh("kt1", f"cat /root/x-{tag} /root/y-{tag}").stdout == "x 1\ny 1\n"
    lab.ssh("kt1", f"rm -f /root/x-{tag} /root/y-{tag}")


def test_become_runs_tasks_as_root_for_a_sudo_user(lab, tmp_path):
    # As root: a sudo user with the lab key (what a real machine's installer would have set up).
    setup = project(tmp_path / "setup", """\
        - package: {name: sudo}
        - user: {name: kfabop, shell: /bin/bash}
        - file: {path: /home/kfabop/.ssh, state: directory, mode: "0700", owner: kfabop, group: kfabop}
        - command: install -m 600 -o kfabop -g kfabop /root/.ssh/authorized_keys /home/kfabop/.ssh/
        - copy: {content: "kfabop ALL=(ALL) NOPASSWD: ALL\\n", dest: /etc/sudoers.d/kfabop, mode: "0440"}
        """)
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt3", str(setup))
    assert result.returncode == 0, result.stdout + result.stderr

    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["vars"]["ansible_user"] = "kfabop"
    inv = tmp_path / "sudo.yml"
    inv.write_text(yaml.safe_dump(inventory))
    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path / "work", f"""\
        - name: who am I
          command: id -un
          register: who
          changed_when: false
        - name: a root-owned file
          copy: {{content: "{{{{ who.stdout }}}}\\n", dest: /etc/kfab-become-{tag}, mode: "0600"}}
        """, play="  become: true\n")
    result = kfab_up("-i", str(inv), "--limit", "kt3", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.ssh("kt3", f"stat -c '%U %a' /etc/kfab-become-{tag}").stdout.strip() == "root 600"
    assert lab.ssh("kt3", f"cat /etc/kfab-become-{tag}").stdout == "root\n"
    lab.ssh("kt3", f"rm -f /etc/kfab-become-{tag}")


def test_service_unit_install_start_and_wait_for_port(lab, tmp_path):
    tag = uuid.uuid4().hex[:8]
    unit = f"kfab-probe-{tag}"
    site = project(tmp_path, f"""\
        - name: install the unit
          copy:
            dest: /etc/systemd/system/{unit}.service
            content: |
              [Unit]
              Description=kfab probe web server
              [Service]
              ExecStart=/usr/bin/python3 -m http.server {{{{ probe_port }}}} --bind 127.0.0.1 --directory /root
              [Install]
              WantedBy=multi-user.target
          notify: restart probe
        - name: run it
          service: {{name: {unit}, state: started, enabled: true}}
        - name: wait until it listens
          wait_for: {{port: "{{{{ probe_port }}}}", timeout: "{{{{ probe_timeout | default(30) }}}}"}}
        """, handlers=f"""\
        - name: restart probe
          service: {{name: {unit}, state: restarted}}
        """)
    first = kfab_up("-i", str(lab.inventory), "--limit", "kt1", "-e", "probe_port=18765", "-v", str(site))
    try:
        assert first.returncode == 0, first.stdout + first.stderr
        # The unit file was new in this run: systemd had to re-read it before starting it.
        assert "systemctl daemon-reload" in first.stdout
        assert lab.ssh("kt1", f"systemctl is-active {unit}").stdout.strip() == "active"
        assert lab.ssh("kt1", f"systemctl is-enabled {unit}").stdout.strip() == "enabled"
        again = kfab_up("-i", str(lab.inventory), "--limit", "kt1", "-e", "probe_port=18765", str(site))
        assert again.returncode == 0 and recap(again.stdout)["kt1"]["changed"] == 0, again.stdout
        # Handlers run at the end of the play, so the server still listens on the old port when the
        # wait for the new one runs: the wait fails the host with a clear message.
        stuck = kfab_up("-i", str(lab.inventory), "--limit", "kt1", "-e", "probe_port=18766 probe_timeout=2",
                        str(site))
        assert stuck.returncode == 2
        assert "timed out after 2s waiting for 127.0.0.1:18766 to appear" in stuck.stdout
    finally:
        lab.ssh("kt1", f"systemctl disable --now {unit}; rm -f /etc/systemd/system/{unit}.service; "
                       "systemctl daemon-reload", check=False)


def _wheel(directory: Path, value: str) -> Path:
    """A minimal pure-Python wheel, built by hand (no build backend or index needed)."""
    import base64
    import hashlib
    import zipfile
    files = {
        "kfabprobe/__init__.py": f"VALUE = {value!r}\n",
        "kfabprobe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: kfabprobe\nVersion: 1.0\n",
        "kfabprobe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: kfab-test\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files["kfabprobe-1.0.dist-info/RECORD"] = "\n".join(record + ["kfabprobe-1.0.dist-info/RECORD,,"]) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kfabprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_venv_is_filled_from_a_local_wheelhouse_without_an_index(lab, tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    _wheel(wheelhouse, "one")
    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path, f"""\
        - package: {{name: python3-venv}}
        - name: probe venv
          venv: {{path: /opt/probe-{tag}, wheelhouse: "{{{{ wheelhouse }}}}", packages: [kfabprobe]}}
        """)
    run = ["-i", str(lab.inventory), "--limit", "kt2", "-e", f"wheelhouse={wheelhouse}", str(site)]
    python = f"/opt/probe-{tag}/bin/python -c 'import kfabprobe; print(kfabprobe.VALUE)'"
    try:
        first = kfab_up(*run)
        assert first.returncode == 0, first.stdout + first.stderr
        assert lab.ssh("kt2", python).stdout.strip() == "one"
        again = kfab_up(*run)
        assert again.returncode == 0 and recap(again.stdout)["kt2"]["changed"] == 0, again.stdout
        _wheel(wheelhouse, "two")   # rebuilt with the same version number
        third = kfab_up(*run)
        assert third.returncode == 0 and recap(third.stdout)["kt2"]["changed"] == 1, third.stdout
        assert lab.ssh("kt2", python).stdout.strip() == "two"
    finally:
        lab.ssh("kt2", f"rm -rf /opt/probe-{tag}", check=False)


def test_become_with_a_password_never_shows_it(lab, tmp_path):
    # A sudo user that needs its password: ansible_become_password feeds `sudo -S` through a here-document.
    password = f"pw-{uuid.uuid4().hex[:12]}"
    setup = project(tmp_path / "setup", f"""\
        - package: {{name: sudo}}
        - user: {{name: kfabpw, shell: /bin/bash}}
        - shell: "echo 'kfabpw:{password}' | chpasswd"
        - file: {{path: /home/kfabpw/.ssh, state: directory, mode: "0700", owner: kfabpw, group: kfabpw}}
        - command: install -m 600 -o kfabpw -g kfabpw /root/.ssh/authorized_keys /home/kfabpw/.ssh/
        - copy: {{content: "kfabpw ALL=(ALL) ALL\\n", dest: /etc/sudoers.d/kfabpw, mode: "0440"}}
        """)
    result = kfab_up("-i", str(lab.inventory), "--limit", "kt3", str(setup))
    assert result.returncode == 0, result.stdout + result.stderr

    tag = uuid.uuid4().hex[:8]
    site = project(tmp_path / "work", f"""\
        - name: a root-owned file
          shell: "id -un > /etc/kfab-become-pw-{tag}"
        """, play="  become: true\n")
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["vars"]["ansible_user"] = "kfabpw"
    (tmp_path / "nopw.yml").write_text(yaml.safe_dump(inventory))
    refused = kfab_up("-i", str(tmp_path / "nopw.yml"), "--limit", "kt3", str(site))
    assert refused.returncode == 2 and "password is required" in refused.stdout, refused.stdout + refused.stderr
    inventory["all"]["vars"]["ansible_become_password"] = password
    (tmp_path / "pw.yml").write_text(yaml.safe_dump(inventory))
    result = kfab_up("-i", str(tmp_path / "pw.yml"), "--limit", "kt3", "-vv", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.ssh("kt3", f"cat /etc/kfab-become-pw-{tag}").stdout == "root\n"
    assert password not in result.stdout + result.stderr
    lab.ssh("kt3", f"rm -f /etc/kfab-become-pw-{tag}")


def test_password_login_when_asked(lab, tmp_path):
    # ansible_password and no key: paramiko logs in with the password. The lab's sshd refuses passwords
    # but for this one user, for this test.
    password = f"pw-{uuid.uuid4().hex[:12]}"
    lab.ssh("kt3", f"id kfabpw || useradd -m -s /bin/bash kfabpw; echo 'kfabpw:{password}' | chpasswd; "
                   "printf 'Match User kfabpw\\n  PasswordAuthentication yes\\n' "
                   "> /etc/ssh/sshd_config.d/zz-kfabpw.conf; "
                   "systemctl reload ssh")
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["vars"].pop("ansible_ssh_private_key_file")
    inventory["all"]["vars"].update(ansible_user="kfabpw", ansible_password=password)
    (tmp_path / "pw-login.yml").write_text(yaml.safe_dump(inventory))
    site = project(tmp_path / "work", "- command: id -un\n  register: who\n  failed_when: who.stdout != 'kfabpw'\n")
    try:
        result = kfab_up("-i", str(tmp_path / "pw-login.yml"), "--limit", "kt3", str(site))
    finally:
        lab.ssh("kt3", "rm -f /etc/ssh/sshd_config.d/zz-kfabpw.conf && systemctl reload ssh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
