"""Task modules: fed a host's state, they yield exactly the changes needed (and nothing when the state
already matches, which is what makes a second run report `ok`)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field

import pytest

from kfab.provision.modules import MODULES
from kfab.provision.modules.base import Command, CommandResult, Diff, Fail, FileInfo, PutFile, Result, UnitInfo
from kfab.provision.modules.lineinfile import edit_lines
from kfab.provision.modules.package import apt_update_command


@dataclass
class FakeHost:
    files: dict = field(default_factory=dict)
    installed: set = field(default_factory=set)
    sysctls: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)
    succeeding: set = field(default_factory=set)
    hostname: str = "old"
    check: bool = False
    unit_files_changed: bool = False
    waits: list = field(default_factory=list)

    def file(self, path, content=False):
        return self.files.get(path)

    def packages(self, names):
        return {n: n in self.installed for n in names}

    def sysctl(self, key):
        return self.sysctls.get(key)

    def unit(self, name):
        return self.units.get(name, UnitInfo(False, "", ""))

    def succeeds(self, cmd):
        return cmd in self.succeeding

    def user(self, name):
        return self.users.get(name)

    def wait_for(self, what, timeout, present):
        self.waits.append((what, timeout, present))
        return what != "tcp:127.0.0.1:1"

    def current_hostname(self):
        return self.hostname


class FakeFiles:
    def render_template(self, src):
        return f"rendered {src}\n"

    def read_file(self, src):
        return b"file " + src.encode()

    def local_files(self, directory, suffix=""):
        return {"a-1.0-py3-none-any.whl": b"A", "b-2.0-py3-none-any.whl": b"B"} if directory == "/wh" else {}


def plan(module, host, **args):
    """Run a module's plan to the end, answering each command with success; return what it yielded."""
    m = MODULES[module]
    gen = m.plan(m.with_defaults(args), host, FakeFiles())
    out, reply = [], None
    try:
        while True:
            change = gen.send(reply)
            out.append(change)
            reply = CommandResult(0, "out\n", "") if isinstance(change, Command) else None
    except StopIteration:
        return out


def cmds(changes):
    return [c.cmd for c in changes if isinstance(c, Command)]


def regular(content: bytes, mode="0644", owner="root", group="root"):
    return FileInfo("file", mode, owner, group, content=content)


# ---- package ------------------------------------------------------------------------------------

def test_package_installs_only_missing_with_one_cache_update():
    changes = plan("package", FakeHost(installed={"curl"}), name=["curl", "podman", "runc"])
    assert changes[0] == Command(changes[0].cmd, once="apt-update") and changes[0].cmd.endswith(" update")
    assert changes[1].cmd.endswith("install podman runc")


def test_a_hung_apt_update_is_ended_and_run_once_more(tmp_path):
    # A fake apt-get that hangs the first time (as apt's http method did on a closed cache connection).
    fake = tmp_path / "apt-get"
    fake.write_text(f"#!/bin/sh\necho run >> {tmp_path}/runs\n"
                    f"[ -e {tmp_path}/hung ] || {{ touch {tmp_path}/hung; exec sleep 60; }}\nexit 0\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.run(["sh", "-c", apt_update_command(timeout_s=0.5)], env=env, capture_output=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs").read_text().count("run") == 2


def test_package_present_is_ok_and_absent_removes():
    assert plan("package", FakeHost(installed={"curl"}), name="curl") == []
    assert cmds(plan("package", FakeHost(installed={"curl"}), name="curl", state="absent"))[0].endswith(
        "remove curl")
    assert plan("package", FakeHost(), name="curl", state="absent") == []


# ---- template / copy ---------------------------------------------------------------------------------

def test_template_new_file_is_put_with_mode_and_diff():
    changes = plan("template", FakeHost(), src="a.j2", dest="/etc/a", mode="0600")
    assert changes[0] == Diff("/etc/a", "", "rendered a.j2\n")
    assert changes[1] == PutFile("/etc/a", b"rendered a.j2\n", "0600", None, None)


def test_template_same_content_is_ok_but_wrong_mode_is_fixed():
    host = FakeHost(files={"/etc/a": regular(b"rendered a.j2\n")})
    assert plan("template", host, src="a.j2", dest="/etc/a", mode="0644") == []
    assert plan("template", host, src="a.j2", dest="/etc/a", mode=0o600) == [Command("chmod 0600 /etc/a")]
    assert plan("template", host, src="a.j2", dest="/etc/a", owner="kfab") == [Command("chown kfab:root /etc/a")]


def test_template_changed_content_keeps_existing_mode_and_owner():
    host = FakeHost(files={"/etc/a": regular(b"old\n", "0640", "app", "app")})
    changes = plan("template", host, src="a.j2", dest="/etc/a")
    assert changes == [Diff("/etc/a", "old\n", "rendered a.j2\n"),
                       PutFile("/etc/a", b"rendered a.j2\n", "0640", "app", "app")]


def test_copy_from_files_or_content():
    assert plan("copy", FakeHost(), src="x.conf", dest="/etc/x")[-1].content == b"file x.conf"
    assert plan("copy", FakeHost(), content="hello\n", dest="/etc/x")[-1].content == b"hello\n"
    assert isinstance(plan("copy", FakeHost(), dest="/etc/x")[0], Fail)
    assert isinstance(plan("copy", FakeHost(files={"/etc/x": FileInfo("directory", "0755", "r", "r")}),
                           content="a", dest="/etc/x")[0], Fail)


# ---- file ----------------------------------------------------------------------------------------------

def test_file_states():
    d = FileInfo("directory", "0755", "root", "root")
    # As Ansible: the missing parents get the mode (and owner/group) too.
    assert cmds(plan("file", FakeHost(), path="/srv/d", state="directory", mode="0750", owner="app")) == [
        "{ [ -d /srv ] || { mkdir -m 0750 -- /srv && chown app /srv; }; } && "
        "{ [ -d /srv/d ] || { mkdir -m 0750 -- /srv/d && chown app /srv/d; }; }"]
    assert plan("file", FakeHost(files={"/srv/d": d}), path="/srv/d", state="directory", mode="0755") == []
    assert cmds(plan("file", FakeHost(files={"/srv/d": d}), path="/srv/d", state="absent")) == ["rm -rf -- /srv/d"]
    assert plan("file", FakeHost(), path="/srv/d", state="absent") == []
    assert cmds(plan("file", FakeHost(), path="/a", state="link", src="/b")) == ["ln -sfn /b /a"]
    link = FileInfo("link", "0777", "root", "root", target="/b")
    assert plan("file", FakeHost(files={"/a": link}), path="/a", state="link", src="/b") == []
    assert cmds(plan("file", FakeHost(), path="/t", state="touch")) == ["touch -- /t"]
    assert plan("file", FakeHost(files={"/t": regular(b"")}), path="/t", state="touch") == []
    assert isinstance(plan("file", FakeHost(), path="/nope", state="file")[0], Fail)
    assert isinstance(plan("file", FakeHost(files={"/srv/d": regular(b"")}), path="/srv/d",
                           state="directory")[0], Fail)


# ---- line ----------------------------------------------------------------------------------------------

def test_edit_lines():
    assert edit_lines("a\nb\n", "c", None, True) == "a\nb\nc\n"
    assert edit_lines("a\nc\n", "c", None, True) == "a\nc\n"
    assert edit_lines("x=1\ny=2\nx=3\n", "x=9", r"^x=", True) == "x=1\ny=2\nx=9\n"
    assert edit_lines("x=1\ny=2\n", None, r"^x=", False) == "y=2\n"
    assert edit_lines("", "a", None, True) == "a\n"


def test_line_module_is_idempotent_and_needs_create_for_new_files():
    host = FakeHost(files={"/etc/f": regular(b"a\nb\n")})
    assert plan("line", host, path="/etc/f", line="b") == []
    assert plan("line", host, path="/etc/f", line="c")[-1].content == b"a\nb\nc\n"
    assert isinstance(plan("line", FakeHost(), path="/etc/new", line="c")[0], Fail)
    assert plan("line", FakeHost(), path="/etc/new", line="c", create=True)[-1].content == b"c\n"


# ---- sysctl --------------------------------------------------------------------------------------------

def test_sysctl_persists_and_applies():
    changes = plan("sysctl", FakeHost(sysctls={"net.ipv4.ip_forward": "0"}), name="net.ipv4.ip_forward", value=1)
    put = [c for c in changes if isinstance(c, PutFile)][0]
    assert put.path == "/etc/sysctl.d/90-kfab.conf" and put.content == b"net.ipv4.ip_forward = 1\n"
    assert cmds(changes) == ["sysctl -q -w net.ipv4.ip_forward=1"]


def test_sysctl_already_set_is_ok_and_missing_key_fails_clearly():
    host = FakeHost(files={"/etc/sysctl.d/90-kfab.conf": regular(b"net.ipv4.ip_forward = 1\n")},
                    sysctls={"net.ipv4.ip_forward": "1"})
    assert plan("sysctl", host, name="net.ipv4.ip_forward", value="1") == []
    changes = plan("sysctl", FakeHost(), name="net.bridge.bridge-nf-call-iptables", value=1)
    assert "cannot load modules" in changes[-1].message


# ---- service ---------------------------------------------------------------------------------------------

def test_service_start_enable_and_daemon_reload_after_unit_change():
    host = FakeHost(units={"etcd": UnitInfo(True, "disabled", "inactive")}, unit_files_changed=True)
    changes = plan("service", host, name="etcd", state="started", enabled=True)
    assert cmds(changes) == ["systemctl daemon-reload", "systemctl enable etcd", "systemctl start etcd"]
    assert changes[0].daemon_reload


def test_service_in_wanted_state_is_ok_restarted_always_acts():
    host = FakeHost(units={"etcd": UnitInfo(True, "enabled", "active")})
    assert plan("service", host, name="etcd", state="started", enabled=True) == []
    assert cmds(plan("service", host, name="etcd", state="restarted")) == ["systemctl restart etcd"]
    assert cmds(plan("service", host, name="etcd", state="stopped", enabled=False)) == [
        "systemctl disable etcd", "systemctl stop etcd"]
    assert isinstance(plan("service", FakeHost(), name="nope", state="started")[0], Fail)


# ---- command / shell -------------------------------------------------------------------------------------

def test_command_runs_and_registers_output():
    changes = plan("command", FakeHost(), cmd="echo 'a b' $HOME")
    assert cmds(changes) == ["echo 'a b' '$HOME'"]  # command: no shell expansion
    assert changes[-1] == Result({"rc": 0, "stdout": "out", "stderr": "", "stdout_lines": ["out"],
                                  "stderr_lines": []})
    assert cmds(plan("shell", FakeHost(), cmd="echo $HOME | wc -c")) == ["/bin/sh -c 'echo $HOME | wc -c'"]


def test_command_creates_and_unless_skip():
    host = FakeHost(files={"/done": regular(b"")}, succeeding={"test -e /x"})
    assert cmds(plan("shell", host, cmd="make", creates="/done")) == []
    assert cmds(plan("shell", host, cmd="make", unless="test -e /x")) == []
    assert cmds(plan("shell", host, cmd="make", creates="/other", chdir="/src")) == ["cd /src && /bin/sh -c make"]


# ---- wait_for / user / hostname ---------------------------------------------------------------------------

def test_wait_for():
    host = FakeHost()
    assert plan("wait_for", host, port=2379, timeout=5) == []
    assert host.waits == [("tcp:127.0.0.1:2379", 5.0, True)]
    assert "timed out after 2s waiting for 127.0.0.1:1" in plan("wait_for", host, port=1, timeout=2)[0].message
    assert isinstance(plan("wait_for", host)[0], Fail)


def test_user():
    assert cmds(plan("user", FakeHost(), name="kfab", groups=["sudo"], shell="/bin/bash")) == [
        "useradd -G sudo -s /bin/bash -m kfab"]
    existing = {"kfab": {"uid": 1000, "group": "kfab", "groups": ["kfab", "sudo"], "shell": "/bin/bash",
                         "home": "/home/kfab"}}
    assert plan("user", FakeHost(users=existing), name="kfab", groups=["sudo"], shell="/bin/bash") == []
    assert cmds(plan("user", FakeHost(users=existing), name="kfab", shell="/bin/sh")) == ["usermod -s /bin/sh kfab"]
    assert cmds(plan("user", FakeHost(users=existing), name="kfab", state="absent")) == ["userdel kfab"]


def test_hostname():
    host = FakeHost(files={"/etc/hostname": regular(b"kt1\n")}, hostname="kt1")
    assert plan("hostname", host, name="kt1") == []
    changes = plan("hostname", FakeHost(), name="kt1")
    assert [c.path for c in changes if isinstance(c, PutFile)] == ["/etc/hostname"]
    assert cmds(changes) == ["hostname kt1"]


@pytest.mark.parametrize("mode, expected", [("0644", "0644"), ("644", "0644"), (0o755, "0755"), (420, "0644")])
def test_modes_are_octal(mode, expected):
    from kfab.provision.modules.base import octal_mode
    assert octal_mode(mode) == expected


def test_facts_are_parsed_with_types():
    from kfab.provision.facts import parse_facts
    facts = parse_facts("os_id=debian\nos_version=12\ncpus=2\nmemory_mb=24000\nbridge_nf=no\n"
                        "default_ipv4=10.79.0.11\ninit=systemd\nnoise line\n")
    assert facts == {"os_id": "debian", "os_version": "12", "cpus": 2, "memory_mb": 24000, "bridge_nf": False,
                     "default_ipv4": "10.79.0.11", "init": "systemd"}


def test_venv_installs_from_the_wheelhouse_once():
    from kfab.provision.modules.venv import wheelhouse_digest
    changes = plan("venv", FakeHost(), path="/opt/kfab/venv", wheelhouse="/wh", packages=["a"])
    assert cmds(changes)[0] == "python3 -m venv /opt/kfab/venv"
    assert [c.path for c in changes if isinstance(c, PutFile)] == [
        "/opt/kfab/venv/wheelhouse/a-1.0-py3-none-any.whl", "/opt/kfab/venv/wheelhouse/b-2.0-py3-none-any.whl",
        "/opt/kfab/venv/.kfab-wheelhouse"]
    assert "--no-index --find-links /opt/kfab/venv/wheelhouse" in cmds(changes)[-1]
    stamp = (wheelhouse_digest({"a-1.0-py3-none-any.whl": b"A", "b-2.0-py3-none-any.whl": b"B"}, ["a"]) + "\n")
    done = FakeHost(files={"/opt/kfab/venv/.kfab-wheelhouse": regular(stamp.encode()),
                           "/opt/kfab/venv/bin/python": FileInfo("link", "0777", "root", "root", "python3")})
    assert plan("venv", done, path="/opt/kfab/venv", wheelhouse="/wh", packages=["a"]) == []
    changed = plan("venv", done, path="/opt/kfab/venv", wheelhouse="/wh", packages=["a", "b"])
    assert cmds(changed)[0].startswith("rm -rf")
    assert isinstance(plan("venv", FakeHost(), path="/v", wheelhouse="/empty", packages=["a"])[0], Fail)


# ---- replace, group, blockinfile ---------------------------------------------------------------------

def test_replace_between_after_and_before():
    from kfab.provision.modules.replace import replace_text
    text = "a=1\n[main]\na=2\nb=2\n[other]\na=3\n"
    assert replace_text(text, r"^a=(\d)$", r"a=\1\1", after=r"\[main\]", before=r"\[other\]") == (
        "a=1\n[main]\na=22\nb=2\n[other]\na=3\n", 1)
    host = FakeHost(files={"/etc/f": FileInfo("file", "0644", "root", "root", content=text.encode())})
    assert plan("replace", host, path="/etc/f", regexp="^zzz", replace="x") == []
    assert plan("replace", host, path="/etc/f", regexp="^a=", replace="A=")[-1].content.count(b"A=") == 3


def test_group_added_changed_removed():
    host = FakeHost()
    host.group = lambda name: {"name": "web", "gid": 1001, "members": []} if name == "web" else None
    assert [c.cmd for c in plan("group", host, name="db", gid=1200, system=True)] == ["groupadd -g 1200 -r db"]
    assert plan("group", host, name="web", gid=1001) == []
    assert [c.cmd for c in plan("group", host, name="web", gid=1002)] == ["groupmod -g 1002 web"]
    assert [c.cmd for c in plan("group", host, name="web", state="absent")] == ["groupdel web"]


def test_blockinfile_replaces_its_block_and_inserts_after_an_anchor():
    from kfab.provision.modules.blockinfile import edit_block
    text = "a\nanchor\nz\n"
    once = edit_block(text, "x\ny", True, insertafter="^anchor")
    assert once == "a\nanchor\n# BEGIN ANSIBLE MANAGED BLOCK\nx\ny\n# END ANSIBLE MANAGED BLOCK\nz\n"
    assert edit_block(once, "x\ny", True, insertafter="^anchor") == once
    assert edit_block(once, "w", True) == once.replace("x\ny\n", "w\n")
    assert edit_block(once, "", False) == text


def test_apt_maps_onto_package():
    host = FakeHost(installed={"curl"})
    assert plan("apt", host, name=["curl"], update_cache=True) == []
    cmds = [c.cmd for c in plan("apt", host, name="jq", state="installed", install_recommends=False)]
    assert cmds[-1].endswith("--no-install-recommends install jq")
    assert [c.cmd for c in plan("apt", host, name="curl", state="absent")][-1].endswith("remove curl")
    assert plan("apt", host, update_cache=True) == []


def test_authorized_key_adds_once_and_exclusive_keeps_only_given_keys():
    key = "ssh-ed25519 AAAAC3Nza alice@laptop"
    other = "ssh-rsa AAAAB3Nza old@box"
    host = FakeHost(users={"alice": {"uid": 1000, "home": "/home/alice", "shell": "/bin/bash", "group": "alice",
                                     "groups": []}},
                    files={"/home/alice/.ssh": FileInfo("directory", "0700", "alice", "alice"),
                           "/home/alice/.ssh/authorized_keys": FileInfo(
                               "file", "0600", "alice", "alice", content=(other + "\n").encode())})
    put = plan("authorized_key", host, user="alice", key=key)[-1]
    assert put.content == f"{other}\n{key}\n".encode() and (put.mode, put.owner) == ("0600", "alice")
    assert plan("authorized_key", host, user="alice", key=other) == []          # already there
    assert plan("authorized_key", host, user="alice", key=key, exclusive=True)[-1].content == f"{key}\n".encode()
    assert plan("authorized_key", host, user="alice", key=other, state="absent")[-1].content == b""
    assert isinstance(plan("authorized_key", host, user="nobody-here", key=key)[0], Fail)


def test_modprobe_loads_and_persists():
    host = FakeHost()
    changes = plan("modprobe", host, name="br_netfilter", persistent="present", params="x=1")
    assert changes[0].cmd == "modprobe br_netfilter x=1"
    assert [c.path for c in changes if isinstance(c, PutFile)] == ["/etc/modules-load.d/br_netfilter.conf",
                                                                   "/etc/modprobe.d/br_netfilter.conf"]
    host.succeeding.add("grep -q '^br_netfilter ' /proc/modules")
    assert plan("modprobe", host, name="br_netfilter") == []
    assert [c.cmd for c in plan("modprobe", host, name="br_netfilter", state="absent")] == ["modprobe -r br_netfilter"]


def test_mount_writes_fstab_and_mounts():
    fstab = "UUID=1 / ext4 defaults 0 1\n"
    host = FakeHost(files={"/etc/fstab": FileInfo("file", "0644", "root", "root", content=fstab.encode())})
    changes = plan("mount", host, path="/srv/nfs", src="tmpfs", fstype="tmpfs", opts="size=1g", state="mounted")
    assert changes[-2].content == (fstab + "tmpfs /srv/nfs tmpfs size=1g 0 0\n").encode()
    assert changes[-1].cmd == "mkdir -p /srv/nfs && mount /srv/nfs"
    host.files["/etc/fstab"] = FileInfo("file", "0644", "root", "root", content=changes[-2].content)
    host.succeeding.add("mountpoint -q /srv/nfs")
    assert plan("mount", host, path="/srv/nfs", src="tmpfs", fstype="tmpfs", opts="size=1g", state="mounted") == []
    gone = plan("mount", host, path="/srv/nfs", state="absent")
    assert gone[-2].content == fstab.encode() and gone[-1].cmd == "umount /srv/nfs"


def test_cron_job_under_ansible_marker():
    from kfab.provision.modules.cron import edit_crontab
    text = "#Ansible: backup\n0 2 * * * /bin/backup\nMAILTO=x\n"
    assert edit_crontab(text, "backup", "0 3 * * * /bin/backup") == (
        "#Ansible: backup\n0 3 * * * /bin/backup\nMAILTO=x\n")
    assert edit_crontab(text, "backup", None) == "MAILTO=x\n"
    assert edit_crontab("", "tick", "@hourly date") == "#Ansible: tick\n@hourly date\n"
    host = FakeHost(files={"/var/spool/cron/crontabs/root": FileInfo("file", "0600", "root", "crontab",
                                                                     content=text.encode())})
    assert plan("cron", host, name="backup", minute="0", hour="2", job="/bin/backup") == []
    assert "crontab -u root -" in plan("cron", host, name="backup", hour="3", minute="0", job="/bin/backup")[0].cmd


def test_deb822_repository_writes_sources_and_key_then_refreshes_apt():
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n-----END PGP PUBLIC KEY BLOCK-----"
    host = FakeHost(files={"/etc/apt/keyrings": FileInfo("directory", "0755", "root", "root")})
    changes = plan("deb822_repository", host, name="grafana", uris="https://apt.grafana.com", suites="stable",
                   components="main", signed_by=key)
    puts = {c.path: c.content.decode() for c in changes if isinstance(c, PutFile)}
    assert puts["/etc/apt/sources.list.d/grafana.sources"] == (
        "X-Repolib-Name: grafana\nTypes: deb\nURIs: https://apt.grafana.com\nSuites: stable\nComponents: main\n"
        "Signed-By: /etc/apt/keyrings/grafana.asc\n")
    assert puts["/etc/apt/keyrings/grafana.asc"].startswith("-----BEGIN PGP")
    assert changes[-1].cmd.endswith(" update")
    for path, text in puts.items():
        host.files[path] = FileInfo("file", "0644", "root", "root", content=text.encode())
    assert plan("deb822_repository", host, name="grafana", uris="https://apt.grafana.com", suites="stable",
                components="main", signed_by=key) == []


def test_service_masked_and_daemon_reload_alone():
    host = FakeHost(units={"ntp": UnitInfo(True, "enabled", "active")})
    assert [c.cmd for c in plan("service", host, name="ntp", masked=True)] == ["systemctl mask ntp"]
    host.units["ntp"] = UnitInfo(True, "masked", "inactive")
    assert plan("service", host, name="ntp", masked=True) == []
    assert [c.cmd for c in plan("service", host, name="ntp", masked=False, state="started")] == [
        "systemctl unmask ntp", "systemctl start ntp"]
    assert [c.cmd for c in plan("service", host, daemon_reload=True)] == ["systemctl daemon-reload"]
    # As Ansible's systemd module: the reload runs but is no change by itself (a rerun reports ok).
    assert [c.changes for c in plan("service", host, daemon_reload=True)] == [False]
    assert isinstance(plan("service", host)[0], Fail)


class SourcesHost(FakeHost):
    """apt_repository asks which source files hold a line (grep -lxF LINE FILES)."""

    def query(self, cmd):
        line = shlex.split(cmd)[3]
        return "".join(f"{path}\n" for path, info in self.files.items()
                       if path.startswith("/etc/apt/") and line in info.content.decode().splitlines())


def test_apt_repository_names_the_file_as_ansible_and_keeps_the_line_once():
    repo = "deb [signed-by=/etc/apt/keyrings/d.asc] https://download.docker.com/linux/debian bookworm stable"
    host = SourcesHost()
    changes = plan("apt_repository", host, repo=repo)
    put = next(c for c in changes if isinstance(c, PutFile))
    # ansible.builtin.apt_repository's name for it (its _suggest_filename) and its line as given.
    assert (put.path, put.content, put.mode) == (
        "/etc/apt/sources.list.d/download_docker_com_linux_debian.list", (repo + "\n").encode(), "0644")
    assert cmds(changes)[-1].endswith(" update")
    host.files[put.path] = regular(put.content)
    assert plan("apt_repository", host, repo=repo.replace(" ", "  ")) == []          # already there
    host.files["/etc/apt/sources.list"] = regular(b"deb http://deb.debian.org/debian bookworm main\n")
    assert plan("apt_repository", host, repo="deb http://deb.debian.org/debian bookworm main") == []
    assert cmds(plan("apt_repository", host, repo=repo, state="absent", update_cache=False)) == [
        "rm -f /etc/apt/sources.list.d/download_docker_com_linux_debian.list"]      # emptied: removed
    assert isinstance(plan("apt_repository", host, repo="https://example.com/debian")[0], Fail)
