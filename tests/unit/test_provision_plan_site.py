"""`kfab plan` of the shipped site.yml with inventory/example-homelab.yml's groups and variables, every host
on the local connection: the plan an operator runs before an install night passes (exit 2: changes
pending, no task failed). Check mode only reads this machine (read-only probes carry check_mode: false);
the cluster's PKI directory and the wheelhouse are redirected into the test's directory. The same plan on
real hosts is tests/lab/test_provision_plan.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SSH_ONLY = ("ansible_port", "ansible_user", "ansible_ssh_private_key_file", "kfab_known_hosts_file",
            "kfab_host_key_checking")


def local_copy(value):
    if isinstance(value, dict):
        return {k: local_copy(v) for k, v in value.items() if k not in SSH_ONLY}
    return value


def test_plan_of_the_example_homelab_passes(tmp_path):
    inventory = local_copy(yaml.safe_load((REPO / "inventory" / "example-homelab.yml").read_text()))
    inventory["all"]["vars"]["ansible_connection"] = "local"
    (tmp_path / "homelab.yml").write_text(yaml.safe_dump(inventory))
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "kfab-0.1.0-py3-none-any.whl").write_bytes(b"compared by digest, never installed by a plan")
    proc = subprocess.run(
        [sys.executable, "-m", "kfab", "plan", "-i", str(tmp_path / "homelab.yml"), "--json",
         "-e", f"kfab_wheelhouse={wheelhouse}", "-e", f"kfab_pki_dir={tmp_path}/pki",
         "-e", f"kfab_admin_kubeconfig={tmp_path}/admin.kubeconfig"],
        cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-6000:]
    plan = json.loads(proc.stdout)
    assert set(plan["hosts"]) == {"hl-cp1", "hl-w1", "hl-w2"}
    for name, host in plan["hosts"].items():
        assert host["stats"]["failed"] == 0 and host["stats"]["unreachable"] == 0, (name, proc.stderr[-4000:])
        assert host["stats"]["changed"] > 0, name
    probe = next(t for t in plan["hosts"]["hl-cp1"]["tasks"] if t["task"].startswith("nfs-server : Which NFS"))
    assert probe["status"] == "ok"     # ran in check mode (check_mode: false), so the NFS tasks could follow
    assert not (tmp_path / "pki" / "ca.key").exists() and not (tmp_path / "admin.kubeconfig").exists()
