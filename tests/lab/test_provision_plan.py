"""`kfab plan` of the whole site.yml with an inventory of inventory/example-homelab.yml's shape (control plane,
etcd, registry, NFS server and iSCSI target on one host, two workers) on the shared lab's hosts: it passes
(exit 2: changes pending, nothing failed) and changes nothing; `--json` is machine-readable. And a host
reached through ~/.ssh/config's ProxyJump."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]


def homelab_shaped(lab, tmp_path: Path) -> Path:
    example = yaml.safe_load((REPO / "inventory" / "example-homelab.yml").read_text())
    lab_vars = yaml.safe_load(lab.inventory.read_text())["all"]["vars"]
    cp, w1, w2 = (name for name in sorted(lab.hosts))
    address = {name: {"ansible_host": ip} for name, ip in lab.hosts.items()}
    inventory = {"all": {
        "vars": {k: v for k, v in example["all"]["vars"].items() if not k.startswith(("ansible_", "kfab_"))}
        | {k: v for k, v in lab_vars.items() if k.startswith(("ansible_", "kfab_known", "kfab_host"))},
        "children": {
            "control_plane": {"hosts": {cp: address[cp]}}, "etcd": {"hosts": {cp: None}},
            "registry": {"hosts": {cp: None}}, "workers": {"hosts": {w1: address[w1], w2: address[w2]}},
            "nfs_server": {"hosts": {cp: None}}, "iscsi_target": {"hosts": {cp: None}}}}}
    assert set(inventory["all"]["children"]) >= set(example["all"]["children"]) - {"package_cache"}
    path = tmp_path / "homelab.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def test_plan_of_the_example_homelab_shape_passes_and_changes_nothing(lab, tmp_path):
    inventory = homelab_shaped(lab, tmp_path)
    # The plan compares the wheelhouse's digest with the hosts' stamp; it installs nothing.
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "kfab-0.1.0-py3-none-any.whl").write_bytes(b"not installed by a plan")
    before = {name: lab.ssh(name, "ls /etc /opt | md5sum").stdout for name in lab.hosts}
    proc = subprocess.run(KFAB + ["plan", "-i", str(inventory), "--json", "-e", f"kfab_wheelhouse={wheelhouse}"],
                          cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-6000:]
    plan = json.loads(proc.stdout)
    assert plan["changed"] is True and set(plan["hosts"]) == set(lab.hosts)
    for name, host in plan["hosts"].items():
        assert host["stats"]["failed"] == 0 and host["stats"]["unreachable"] == 0, (name, proc.stderr[-4000:])
    cp = sorted(lab.hosts)[0]
    detected = next(t for t in plan["hosts"][cp]["tasks"] if t["task"].startswith("nfs-server : Which NFS server"))
    assert detected["status"] == "ok"     # the probe ran in check mode (check_mode: false)
    assert {name: lab.ssh(name, "ls /etc /opt | md5sum").stdout for name in lab.hosts} == before


def test_a_host_reached_through_proxyjump_in_ssh_config(lab, tmp_path):
    jump, target = sorted(lab.hosts)[0], sorted(lab.hosts)[2]
    lab_vars = yaml.safe_load(lab.inventory.read_text())["all"]["vars"]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host behind-the-jump\n  HostName {lab.hosts[target]}\n  User root\n"
                      f"  IdentityFile {lab.key_file}\n  ProxyJump root@{lab.hosts[jump]}\n"
                      f"Host {lab.hosts[jump]}\n  IdentityFile {lab.key_file}\n")
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "inv.yml").write_text(yaml.safe_dump({"all": {"hosts": {"viajump": {
        "ansible_host": "behind-the-jump", "kfab_ssh_config": str(config),
        "kfab_known_hosts_file": lab_vars["kfab_known_hosts_file"], "kfab_host_key_checking": "accept-new"}}}}))
    role = tmp_path / "roles" / "probe" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(f"- shell: 'echo $SSH_CONNECTION > /root/jumped-{tag}'\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [probe]\n")
    proc = subprocess.run(KFAB + ["up", "-i", str(tmp_path / "inv.yml"), str(tmp_path / "site.yml")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # SSH_CONNECTION starts with the client's address: the jump host's, not this machine's.
    seen = lab.ssh(target, f"cat /root/jumped-{tag} && rm /root/jumped-{tag}").stdout.split()
    assert seen[0] == lab.hosts[jump] and seen[2] == lab.hosts[target]


def test_delegate_to_run_once_and_serial_over_ssh(lab, tmp_path):
    first, *others = sorted(lab.hosts)
    tag = uuid.uuid4().hex[:8]
    role = tmp_path / "roles" / "probe" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(f"""\
- name: every host leaves a line on the first one
  shell: "echo {{{{ inventory_hostname }}}} on $(hostname) >> /root/delegated-{tag}"
  delegate_to: {first}
- name: once per batch
  shell: "echo once >> /root/once-{tag}"
  run_once: true
""")
    (tmp_path / "site.yml").write_text("- hosts: all\n  serial: 2\n  roles: [probe]\n")
    proc = subprocess.run(KFAB + ["up", "-i", str(lab.inventory), str(tmp_path / "site.yml")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = lab.ssh(first, f"cat /root/delegated-{tag}").stdout.split("\n")
    assert sorted(line.split()[0] for line in lines if line) == sorted(lab.hosts)
    assert all(line.endswith(f"on {first}") for line in lines if line)
    # 3 hosts in batches of 2: two batches, so run_once ran twice, each time on one host of the batch.
    ran = [lab.ssh(h, f"cat /root/once-{tag} 2>/dev/null || true").stdout.count("once") for h in sorted(lab.hosts)]
    assert sum(ran) == 2, ran
    for h in lab.hosts:
        lab.ssh(h, f"rm -f /root/delegated-{tag} /root/once-{tag}")
